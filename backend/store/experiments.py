"""Experiments (A/B tests) per placement: their arms, validation, life cycle, and the running ones of a site (read
by the in-memory directory that serving asks per request, backend/experiments/directory.py).

Life cycle: ``draft`` (arms may still change) -> ``running`` <-> ``paused`` -> ``stopped`` (final). While paused
or stopped, the placement is served by its own settings, outside any experiment. At most one experiment per
placement is running: the database refuses a second one (a partial unique index), so two admin pages or two
processes cannot both start one.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from backend.algorithms import ARM_CHOICES, HOLDOUT, canonical
from backend.clock import now_ms
from backend.errors import UpnextError
from backend.store.placements import NAME_RE as PLACEMENT_RE
from backend.store.placements import Controls, PlacementError, controls_as_json, controls_from_json
from backend.store.tables import Experiment

ARM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
MAX_ARMS = 8
MAX_SHARE = 10_000
STATUSES = ("draft", "running", "paused", "stopped")
# action -> (statuses it applies to, status it leads to)
TRANSITIONS = {"start": (("draft", "paused"), "running"), "pause": (("running",), "paused"),
               "stop": (("running", "paused"), "stopped")}


class ExperimentError(UpnextError, ValueError):
    """An experiment cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True)
class Arm:
    name: str
    algorithm: str          # a placement algorithm (backend/store/placements.py ALGORITHMS) or "holdout"
    share: int = 1          # relative traffic weight
    # the placement's controls set otherwise for this arm (diversity, max_per_category, pinned, blocked, rules),
    # so that two settings of one algorithm can be compared (e.g. diversity 0 against 0.3)
    overrides: Controls = ()

    @property
    def holdout(self) -> bool:
        return self.algorithm == HOLDOUT

    def as_json(self) -> dict:
        out = {"name": self.name, "algorithm": self.algorithm, "share": self.share}
        if self.overrides:
            out["overrides"] = controls_as_json(self.overrides)
        return out

    @classmethod
    def from_json(cls, d: dict) -> "Arm":
        return cls(name=d["name"], algorithm=d["algorithm"], share=int(d.get("share", 1)),
                   overrides=controls_from_json(d.get("overrides")))

    def describe(self) -> str:
        """The algorithm and overrides in a few words (lists and reports)."""
        if not self.overrides:
            return self.algorithm
        return f"{self.algorithm} ({', '.join(f'{k}={v}' for k, v in controls_as_json(self.overrides).items())})"


@dataclass(frozen=True)
class ExperimentInfo:
    id: int
    site_id: int
    placement: str
    name: str
    salt: str
    status: str
    arms: tuple[Arm, ...]          # the first arm is the control
    created_ms: int
    started_ms: int | None
    stopped_ms: int | None

    @property
    def control(self) -> Arm:
        return self.arms[0]

    def as_json(self) -> dict:
        return {"id": self.id, "site_id": self.site_id, "placement": self.placement, "name": self.name,
                "status": self.status, "control": self.control.name, "arms": [a.as_json() for a in self.arms],
                "created_ms": self.created_ms, "started_ms": self.started_ms, "stopped_ms": self.stopped_ms}


def validate_arms(arms: list[Arm] | tuple[Arm, ...]) -> tuple[Arm, ...]:
    """Arms as given, checked: 2-8 of them, unique names, known algorithms (or ``holdout``), positive shares."""
    arms = tuple(arms)
    if not 2 <= len(arms) <= MAX_ARMS:
        raise ExperimentError(f"an experiment has 2-{MAX_ARMS} arms, got {len(arms)}")
    for a in arms:
        if not isinstance(a.name, str) or not ARM_RE.match(a.name):
            raise ExperimentError(f"arm name {a.name!r}: 1-32 letters, digits, '_', '.' or '-'")
        if canonical(a.algorithm) not in ARM_CHOICES:
            raise ExperimentError(f"arm {a.name}: algorithm must be one of {', '.join(ARM_CHOICES)}")
        if a.overrides and a.algorithm == HOLDOUT:
            raise ExperimentError(f"arm {a.name}: a holdout shows nothing, it takes no settings")
        if not isinstance(a.overrides, tuple):
            raise ExperimentError(f"arm {a.name}: settings must be parsed (controls_from_json)")
        if not isinstance(a.share, int) or isinstance(a.share, bool) or not 1 <= a.share <= MAX_SHARE:
            raise ExperimentError(f"arm {a.name}: share must be a whole number between 1 and {MAX_SHARE} "
                                  "(shares are relative: 1,1,1 splits traffic in thirds)")
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ExperimentError("arm names must differ")
    return tuple(replace(a, algorithm=canonical(a.algorithm)) for a in arms)


def _info(row) -> ExperimentInfo:
    return ExperimentInfo(id=row.id, site_id=row.site_id, placement=row.placement, name=row.name, salt=row.salt,
                          status=row.status, arms=tuple(Arm.from_json(a) for a in row.arms),
                          created_ms=row.created_ms, started_ms=row.started_ms, stopped_ms=row.stopped_ms)


def create_experiment(engine: Engine, site_id: int, placement: str, name: str, arms: list[Arm],
                      *, salt: str | None = None) -> ExperimentInfo:
    """A new experiment in ``draft``; the first arm is the control. ``salt`` (default: random) decides the
    assignment: the same salt and session always give the same arm."""
    if not PLACEMENT_RE.match(placement or ""):
        raise ExperimentError("placement: 1-64 lowercase letters, digits, '-' or '_' (as in data-upnext=\"...\")")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ExperimentError("name: 1-100 characters")
    arms = validate_arms(arms)
    salt = salt or secrets.token_hex(16)
    if not 1 <= len(salt.encode()) <= 64:
        raise ExperimentError("salt: 1-64 bytes (it keys the BLAKE2b hash of session ids)")
    stamp = now_ms()
    with engine.begin() as conn:
        taken = conn.execute(select(Experiment.id).where(Experiment.site_id == site_id,
                                                          Experiment.name == name.strip())).first()
        if taken is not None:
            raise ExperimentError(f"an experiment named {name.strip()!r} exists already on this site: its results "
                                  "would be hard to tell apart, choose another name")
        new_id = conn.execute(Experiment.__table__.insert().values(
            site_id=site_id, placement=placement, name=name.strip(), salt=salt, status="draft",
            arms=[a.as_json() for a in arms], created_ms=stamp, updated_ms=stamp)).inserted_primary_key[0]
    return get_experiment(engine, new_id)


def get_experiment(engine: Engine, experiment_id: int) -> ExperimentInfo:
    with engine.connect() as conn:
        row = conn.execute(select(Experiment).where(Experiment.id == experiment_id)).first()
    if row is None:
        raise ExperimentError(f"no experiment {experiment_id}")
    return _info(row)


def list_experiments(engine: Engine, site_id: int, placement: str | None = None) -> list[ExperimentInfo]:
    """A site's experiments, newest first."""
    query = select(Experiment).where(Experiment.site_id == site_id)
    if placement is not None:
        query = query.where(Experiment.placement == placement)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(Experiment.id.desc())).all()
    return [_info(r) for r in rows]


def running_experiments(engine: Engine, site_id: int | None) -> list[ExperimentInfo]:
    """The site's running experiments (at most one per placement); ``None``: those of every site."""
    query = select(Experiment).where(Experiment.status == "running")
    if site_id is not None:
        query = query.where(Experiment.site_id == site_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [_info(r) for r in rows]


def set_arms(engine: Engine, experiment_id: int, arms: list[Arm]) -> ExperimentInfo:
    """Change the arms of a draft (a started experiment keeps its arms: changing them would move sessions)."""
    arms = validate_arms(arms)
    with engine.begin() as conn:
        n = conn.execute(update(Experiment).where(Experiment.id == experiment_id, Experiment.status == "draft")
                         .values(arms=[a.as_json() for a in arms], updated_ms=now_ms())).rowcount
    if not n:
        raise ExperimentError(f"experiment {experiment_id}: only a draft's arms can change "
                              f"(it is {get_experiment(engine, experiment_id).status})")
    return get_experiment(engine, experiment_id)


def change_status(engine: Engine, experiment_id: int, action: str) -> ExperimentInfo:
    """``start``, ``pause`` or ``stop``; refused (ExperimentError) from the wrong status, and ``start`` while
    another experiment of the placement is running."""
    if action not in TRANSITIONS:
        raise ExperimentError(f"action must be one of {', '.join(TRANSITIONS)}")
    before, after = TRANSITIONS[action]
    current = get_experiment(engine, experiment_id)
    stamp = now_ms()
    values: dict = {"status": after, "updated_ms": stamp}
    if after == "running" and current.started_ms is None:
        values["started_ms"] = stamp
    if after == "stopped":
        values["stopped_ms"] = stamp
    try:
        with engine.begin() as conn:
            n = conn.execute(update(Experiment).where(Experiment.id == experiment_id,
                                                      Experiment.status.in_(before)).values(values)).rowcount
    except IntegrityError:
        running = [e for e in list_experiments(engine, current.site_id, current.placement)
                   if e.status == "running"]
        other = f" ({running[0].name!r}, id {running[0].id})" if running else ""
        raise ExperimentError(f"placement {current.placement} already has a running experiment{other}: "
                              "pause or stop it first") from None
    if not n:
        raise ExperimentError(f"cannot {action} experiment {experiment_id}: it is "
                              f"{get_experiment(engine, experiment_id).status}")
    return get_experiment(engine, experiment_id)


def delete_experiment(engine: Engine, experiment_id: int) -> None:
    """Delete a draft (an experiment that served traffic is kept: its results refer to it)."""
    with engine.begin() as conn:
        n = conn.execute(delete(Experiment).where(Experiment.id == experiment_id,
                                                  Experiment.status == "draft")).rowcount
    if not n:
        raise ExperimentError(f"experiment {experiment_id}: only a draft can be deleted")
