"""The running experiment of each placement, from memory, for the per-request lookups of serving."""
from __future__ import annotations

from backend.experiments.assignment import RunningExperiment
from backend.store.experiments import running_experiments
from backend.store.per_site import PerSiteDirectory


class ExperimentDirectory(PerSiteDirectory[RunningExperiment]):
    """The running experiment of each placement, from memory only: a lookup is a dict access and never touches
    the database. ``refresh`` (the background task, every ``refresh_s``) reloads every site, so changes made by
    another process show within that time; ``invalidate`` reloads a site at once after this process's own
    change. While the database cannot answer, the last experiments loaded keep being served."""

    def running(self, site_id: int, placement: str) -> RunningExperiment | None:
        return self.lookup(site_id, placement)

    def _load(self, site_id: int | None) -> dict[int, dict[str, RunningExperiment]]:
        out: dict[int, dict[str, RunningExperiment]] = {}
        for e in running_experiments(self._engine, site_id):
            out.setdefault(e.site_id, {})[e.placement] = RunningExperiment(e.id, e.salt, e.arms)
        return out
