import pytest

from backend.store import runs
from backend.store.sites import create_site


def test_a_run_goes_from_queued_to_running_to_finished_once(engine, site):
    run_id = runs.create_run(engine, site.site_id, "layers=16")
    run = runs.get_run(engine, run_id)
    assert (run.status, run.trigger, run.gate, run.active) == ("queued", "manual", False, True)
    assert runs.mark_started(engine, run_id, 123, "host-a")
    assert not runs.mark_started(engine, run_id, 456, "host-b")          # taken once
    assert runs.heartbeat(engine, run_id, phase="training", progress={"epoch": 1}) is False
    assert runs.get_run(engine, run_id).progress == {"epoch": 1}
    assert runs.finish(engine, run_id, "succeeded", result={"model_id": None})
    assert not runs.finish(engine, run_id, "failed", error="late")       # ended once
    run = runs.get_run(engine, run_id)
    assert (run.status, run.error, run.active) == ("succeeded", None, False)
    assert runs.heartbeat(engine, run_id) is None                          # no longer running


def test_one_active_run_per_site(engine, site):
    first = runs.create_run(engine, site.site_id, "")
    with pytest.raises(runs.RunError, match=f"run {first} is still queued"):
        runs.create_run(engine, site.site_id, "")
    runs.finish(engine, first, "failed", error="x")
    runs.create_run(engine, site.site_id, "", trigger="schedule", gate=True)


def test_a_queued_run_is_cancelled_at_once_a_running_one_is_asked(engine, site):
    queued = runs.create_run(engine, site.site_id, "")
    assert runs.request_cancel(engine, queued, site.site_id) == "cancelled"
    assert not runs.mark_started(engine, queued, 1, "h")                   # its process then does nothing
    running = runs.create_run(engine, site.site_id, "")
    runs.mark_started(engine, running, 1, "h")
    assert runs.request_cancel(engine, running, site.site_id) == "running"
    assert runs.heartbeat(engine, running) is True
    with pytest.raises(runs.RunError):
        runs.request_cancel(engine, running, site.site_id + 1)


def test_silent_and_never_started_runs_are_marked_failed(engine, site, monkeypatch):
    silent = runs.create_run(engine, site.site_id, "")
    runs.mark_started(engine, silent, 1, "h")
    hb = runs.get_run(engine, silent).heartbeat_ms
    assert runs.fail_stale(engine, now=hb + runs.STALE_HEARTBEAT_MS - 1) == []
    assert runs.fail_stale(engine, now=hb + runs.STALE_HEARTBEAT_MS + 1) == [silent]
    run = runs.get_run(engine, silent)
    assert run.status == "failed" and "stopped answering" in run.error and run.finished_ms

    never = runs.create_run(engine, site.site_id, "")
    created = runs.get_run(engine, never).created_ms
    # unclaimed: it waits for a worker however long it takes
    assert runs.fail_stale(engine, now=created + 100 * runs.STALE_QUEUED_MS) == []
    assert runs.claim_run(engine, never, "host-a")
    claimed = runs.get_run(engine, never).heartbeat_ms
    assert runs.fail_stale(engine, now=claimed + runs.STALE_QUEUED_MS - 1) == []
    assert runs.fail_stale(engine, now=claimed + runs.STALE_QUEUED_MS + 1) == [never]
    assert "never started" in runs.get_run(engine, never).error


def test_bad_triggers_and_statuses_are_refused(engine, site):
    with pytest.raises(ValueError):
        runs.create_run(engine, site.site_id, "", trigger="cron")
    run_id = runs.create_run(engine, site.site_id, "")
    with pytest.raises(ValueError):
        runs.finish(engine, run_id, "running")


def test_listing_is_newest_first_and_per_site(engine, site):
    other = create_site(engine, "other", [])
    ids = []
    for _ in range(3):
        ids.append(runs.create_run(engine, site.site_id, ""))
        runs.finish(engine, ids[-1], "failed", error="x")
    runs.create_run(engine, other.site_id, "")
    assert [r.id for r in runs.list_runs(engine, site.site_id)] == ids[::-1]
    assert [r.site_id for r in runs.active_runs(engine)] == [other.site_id]


def test_a_queued_run_is_claimed_by_one_host_oldest_first(engine, site):
    other = create_site(engine, "other", [])
    first = runs.create_run(engine, site.site_id, "")
    second = runs.create_run(engine, other.site_id, "")
    assert runs.claim_queued(engine, "worker-a").id == first
    assert not runs.claim_run(engine, first, "worker-b")                     # taken once
    claimed = runs.claim_queued(engine, "worker-b")
    assert (claimed.id, claimed.host, claimed.status, claimed.phase) == (second, "worker-b", "queued", "claimed")
    assert runs.claim_queued(engine, "worker-c") is None
    assert runs.request_cancel(engine, second, other.site_id) == "cancelled"   # before its process started
    assert not runs.mark_started(engine, second, 1, "worker-b")


@pytest.mark.postgres
def test_a_worker_skips_a_run_another_worker_has_locked(postgres_server, engine, site, db_url):
    """FOR UPDATE SKIP LOCKED: while one worker's claim holds the oldest run, another takes the next at once."""
    if not db_url.startswith("postgresql"):
        pytest.skip("row locks: PostgreSQL")
    from sqlalchemy import text
    other = create_site(engine, "other", [])
    first = runs.create_run(engine, site.site_id, "")
    second = runs.create_run(engine, other.site_id, "")
    with engine.connect() as holder:
        with holder.begin():
            holder.execute(text("SELECT id FROM training_runs WHERE id = :i FOR UPDATE"), {"i": first})
            assert runs.claim_queued(engine, "worker-b").id == second        # no wait for the held row
        assert runs.claim_queued(engine, "worker-a").id == first


@pytest.mark.postgres
def test_two_workers_racing_on_postgresql_claim_every_run_exactly_once(postgres_server, engine, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("the race that matters: PostgreSQL")
    import threading
    from backend.store.db import make_engine
    queued = {runs.create_run(engine, create_site(engine, f"s{i}", []).site_id, "") for i in range(40)}
    won = {"a": [], "b": []}
    go = threading.Barrier(2)

    def worker(name):
        own = make_engine(db_url)                 # its own connections, as another process would have
        go.wait()
        while (run := runs.claim_queued(own, name)) is not None:
            won[name].append(run.id)
        own.dispose()

    threads = [threading.Thread(target=worker, args=(n,)) for n in won]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won["a"] + won["b"]) == sorted(queued)                  # every run once, none twice
    assert {r.host for r in runs.active_runs(engine)} <= {"a", "b"}
