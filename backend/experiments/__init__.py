"""A/B experiments: arm assignment (assignment.py, routing.py), attribution of what sessions did to arms
(attribution.py), intervals (stats.py), the report, uplift series and CSV (report.py), and the traffic simulator
(visitor.py, replay.py, simulator.py)."""
