"""Tuning studies in the store (``tuning_studies``, ``tuning_trials``): what backend/tuning.py needs to resume a
search. Only finished trials are written (by the process that runs the search), so a study stopped at any point
holds exactly the trials that finished, and a rerun with the same name continues from them.

Why our own tables and not Optuna's RDBStorage: Optuna versions its schema with its own Alembic history in a
table called ``alembic_version``, the table Upnext's migrations use, so the two cannot share one database; and
its tables would live outside migrations/ (the schema test compares the two).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from backend.clock import now_ms
from backend.store.tables import TuningStudy, TuningTrial


@dataclass(frozen=True)
class Study:
    id: int
    name: str
    site_id: int | None
    source: str
    config: dict[str, Any]
    created_ms: int


@dataclass(frozen=True)
class Trial:
    number: int
    state: str                 # complete | failed
    params: dict[str, Any]
    value: float | None
    metrics: dict[str, Any]
    error: str | None
    seconds: float
    finished_ms: int


def _study(r) -> Study:
    return Study(r.id, r.name, r.site_id, r.source, r.config or {}, r.created_ms)


def get_study(engine: Engine, name: str) -> Study | None:
    with engine.connect() as conn:
        r = conn.execute(select(TuningStudy).where(TuningStudy.name == name)).first()
    return _study(r) if r else None


def open_study(engine: Engine, name: str, *, site_id: int | None, source: str, config: dict) -> tuple[Study, bool]:
    """The study called ``name``, created when there is none; (study, created)."""
    study = get_study(engine, name)
    if study is not None:
        return study, False
    try:
        with engine.begin() as conn:
            conn.execute(TuningStudy.__table__.insert().values(name=name, site_id=site_id, source=source,
                                                               config=config, created_ms=now_ms()))
    except IntegrityError:          # another process created it meanwhile: use theirs
        pass
    return get_study(engine, name), True


def list_studies(engine: Engine, site_id: int) -> list[Study]:
    with engine.connect() as conn:
        rows = conn.execute(select(TuningStudy).where(TuningStudy.site_id == site_id)
                            .order_by(TuningStudy.id.desc())).all()
    return [_study(r) for r in rows]


def study_trials(engine: Engine, study_id: int) -> list[Trial]:
    with engine.connect() as conn:
        rows = conn.execute(select(TuningTrial).where(TuningTrial.study_id == study_id)
                            .order_by(TuningTrial.number)).all()
    return [Trial(r.number, r.state, r.params, r.value, r.metrics or {}, r.error, r.seconds, r.finished_ms)
            for r in rows]


def record_trial(engine: Engine, study_id: int, trial: Trial) -> None:
    with engine.begin() as conn:
        conn.execute(TuningTrial.__table__.insert().values(
            study_id=study_id, number=trial.number, state=trial.state, params=trial.params, value=trial.value,
            metrics=trial.metrics, error=trial.error, seconds=trial.seconds, finished_ms=trial.finished_ms))
