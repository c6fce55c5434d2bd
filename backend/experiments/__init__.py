"""A/B experiments: arm assignment (assignment.py, routing.py), the running experiment of each placement
(directory.py), attribution of what sessions did to arms (attribution.py), intervals (stats.py), the report,
uplift series and CSV (report.py). Experiments and their arms are stored by backend/store/experiments.py; the
traffic simulator is backend/simulation/."""
