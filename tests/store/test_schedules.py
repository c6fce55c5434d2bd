from backend.store.schedules import advance_schedule, due_schedules, get_schedule, record_run, write_schedule

T0 = 1_800_000_000_000


def test_a_schedule_is_written_once_per_site_and_keeps_its_last_run(engine, site):
    assert get_schedule(engine, site.site_id) is None
    write_schedule(engine, site.site_id, enabled=True, every_hours=2.0, params="layers=16", next_run_ms=T0,
                   updated_ms=T0)
    record_run(engine, site.site_id, 7)
    write_schedule(engine, site.site_id, enabled=False, every_hours=3.0, params="", next_run_ms=T0 + 5,
                   updated_ms=T0 + 1)
    sched = get_schedule(engine, site.site_id)
    assert (sched.enabled, sched.every_hours, sched.params, sched.next_run_ms, sched.last_run_id) == \
        (False, 3.0, "", T0 + 5, 7)


def test_only_enabled_schedules_are_due_and_each_due_run_is_advanced_once(engine, site):
    write_schedule(engine, site.site_id, enabled=True, every_hours=1.0, params="layers=16", next_run_ms=T0,
                   updated_ms=T0)
    assert due_schedules(engine, T0 - 1) == []
    [due] = due_schedules(engine, T0)
    assert advance_schedule(engine, site.site_id, seen_next_run_ms=due.next_run_ms, next_run_ms=T0 + 10)
    assert not advance_schedule(engine, site.site_id, seen_next_run_ms=due.next_run_ms, next_run_ms=T0 + 20)
    assert get_schedule(engine, site.site_id).next_run_ms == T0 + 10
    write_schedule(engine, site.site_id, enabled=False, every_hours=1.0, params="", next_run_ms=T0,
                   updated_ms=T0)
    assert due_schedules(engine, T0 + 100) == []
    assert not advance_schedule(engine, site.site_id, seen_next_run_ms=T0, next_run_ms=T0 + 10)
