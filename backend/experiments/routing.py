"""How a recommendation request meets a running experiment: which arm serves it, or why it stays outside.

The arm's algorithm replaces the placement's, and so do the controls the arm sets (``overrides``: diversity,
max_per_category, pinned, blocked, rules), so two settings of one algorithm can be compared; the placement's
count, filters, fallbacks and other controls stay. A ``holdout`` arm shows
no widget: its answer is an empty list, the one documented exception to "never empty". A request without a
session id (Global Privacy Control, server-to-server calls) cannot be assigned without storing an identity, so
it is served by the placement's own settings, outside the experiment, and the answer says so.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from backend.algorithms import HOLDOUT
from backend.experiments.assignment import RunningExperiment
from backend.serving.recommender import RecAnswer, RecRequest, recommend
from backend.store.experiments import Arm

NO_SESSION = "no_session"


@dataclass(frozen=True)
class Routing:
    experiment_id: int | None = None    # the running experiment of the placement, if any
    arm: Arm | None = None              # None: served outside the experiment (see ``outside``)
    outside: str | None = None          # why a request on an experiment's placement is not in it

    def as_json(self) -> dict | None:
        """The answer's ``experiment`` field: null when the placement runs none."""
        if self.experiment_id is None:
            return None
        out = {"id": self.experiment_id, "arm": self.arm.name if self.arm else None}
        if self.outside:
            out["outside"] = self.outside
        return out


def route(experiment: RunningExperiment | None, session: str | None) -> Routing:
    if experiment is None:
        return Routing()
    if session is None:
        return Routing(experiment.id, None, NO_SESSION)
    return Routing(experiment.id, experiment.assign(session))


def recommend_routed(req: RecRequest, cfg, model, snap, routing: Routing) -> RecAnswer:
    """``recommend`` with the arm's algorithm and overrides in place of the placement's (nothing, for a holdout)."""
    arm = routing.arm
    if arm is None:
        return recommend(req, cfg, model, snap)
    if arm.algorithm == HOLDOUT:
        return RecAnswer(HOLDOUT, None, [])
    return recommend(req, replace(cfg, algorithm=arm.algorithm, **dict(arm.overrides)), model, snap)
