import pytest

from backend.retraining.scheduler import (HOUR_MS, ScheduleError, Scheduler, claim_due, save_schedule,
                                          set_default_params)
from backend.store import runs
from backend.store.db import make_engine
from backend.store.schedules import get_schedule

T0 = 1_800_000_000_000


class RecordingSupervisor:
    """Creates the run rows as the real one does, without starting processes."""

    def __init__(self, engine):
        self.engine, self.started = engine, []

    def start_run(self, site_id, params, *, trigger, gate):
        run_id = runs.create_run(self.engine, site_id, params, trigger=trigger, gate=gate)
        self.started.append((site_id, params, trigger, gate))
        return run_id


def test_a_schedule_is_due_every_n_hours(engine, site):
    sched = save_schedule(engine, site.site_id, enabled=True, every_hours=6, params="layers=16", now=T0)
    assert sched.next_run_ms == T0 + 6 * HOUR_MS
    assert claim_due(engine, now=T0 + 6 * HOUR_MS - 1) == []
    won = claim_due(engine, now=T0 + 6 * HOUR_MS)
    assert [s.site_id for s in won] == [site.site_id] and won[0].next_run_ms == T0 + 12 * HOUR_MS
    assert claim_due(engine, now=T0 + 6 * HOUR_MS) == []                      # claimed once


def test_missed_runs_are_skipped_not_replayed(engine, site):
    save_schedule(engine, site.site_id, enabled=True, every_hours=1, params="layers=16", now=T0)
    won = claim_due(engine, now=T0 + 10 * HOUR_MS + 5)
    assert len(won) == 1 and won[0].next_run_ms == T0 + 11 * HOUR_MS
    assert claim_due(engine, now=T0 + 10 * HOUR_MS + 6) == []


def test_disabled_schedules_never_run(engine, site):
    save_schedule(engine, site.site_id, enabled=False, every_hours=1, params="", now=T0)
    assert claim_due(engine, now=T0 + 100 * HOUR_MS) == []


def test_only_one_of_several_processes_starts_a_due_run(db_url, site):
    """Two server processes' schedulers, each with its own engine (connection pool), tick at the same time."""
    engines = [make_engine(db_url), make_engine(db_url)]
    try:
        save_schedule(engines[0], site.site_id, enabled=True, every_hours=2, params="layers=16", now=T0)
        supervisors = [RecordingSupervisor(e) for e in engines]
        schedulers = [Scheduler(e, s) for e, s in zip(engines, supervisors)]
        started = [sch.tick(now=T0 + 2 * HOUR_MS + 1) for sch in schedulers]
        started += [sch.tick(now=T0 + 2 * HOUR_MS + 2) for sch in reversed(schedulers)]
        assert sum(len(s) for s in started) == 1
        assert sum(len(s.started) for s in supervisors) == 1
        run_id = next(r for s in started for r in s)
        run = runs.get_run(engines[0], run_id)
        assert (run.trigger, run.gate, run.params) == ("schedule", True, "layers=16")
        assert get_schedule(engines[0], site.site_id).last_run_id == run_id
    finally:
        for e in engines:
            e.dispose()


def test_a_due_run_is_skipped_while_one_is_active(engine, site):
    runs.create_run(engine, site.site_id, "")
    save_schedule(engine, site.site_id, enabled=True, every_hours=1, params="layers=16", now=T0)
    supervisor = RecordingSupervisor(engine)
    assert Scheduler(engine, supervisor).tick(now=T0 + HOUR_MS) == []
    assert get_schedule(engine, site.site_id).next_run_ms == T0 + 2 * HOUR_MS   # tried again next period


@pytest.mark.parametrize("kw, message", [
    ({"every_hours": 0.1, "params": "layers=16"}, "between"),
    ({"every_hours": 24, "params": ""}, "preset or a parameter string"),
    ({"every_hours": 24, "params": "layers=banana"}, "layers"),
])
def test_bad_schedules_are_refused(engine, site, kw, message):
    with pytest.raises((ScheduleError, ValueError), match=message):
        save_schedule(engine, site.site_id, enabled=True, **kw)


def test_tuned_parameters_replace_only_the_schedules_parameters(engine, site):
    save_schedule(engine, site.site_id, enabled=True, every_hours=6, params="layers=16", now=T0)
    sched = set_default_params(engine, site.site_id, "layers=32,n_epochs=2", now=T0 + 5)
    assert (sched.params, sched.enabled, sched.every_hours, sched.next_run_ms) == \
        ("layers=32,n_epochs=2", True, 6.0, T0 + 6 * HOUR_MS)
    with pytest.raises(ValueError, match="layers"):
        set_default_params(engine, site.site_id, "layers=banana")
    assert get_schedule(engine, site.site_id).params == "layers=32,n_epochs=2"
