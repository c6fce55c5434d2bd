"""Roles (issue 16, part 2): with UPNEXT_TRAIN_ON=worker a server only queues training runs; an `upnext worker`
process (any host) claims each one once, trains it, and runs the retraining schedule; cancel and failures work
from any host through the run's row."""
import os
import signal
import subprocess
import sys
import time

import pytest

from backend.clock import now_ms
from backend.retraining.queue_worker import Worker
from backend.retraining.scheduler import HOUR_MS, save_schedule
from backend.retraining.supervisor import RunSupervisor
from backend.settings import Settings
from backend.store import runs
from backend.store.db import make_engine
from backend.store.sites import create_site
from backend.store.trained_models import list_models, live_models
from tests.support.training import TINY
from tests.support.visits import seed_visits

LONG = "layers=16,n_epochs=100000,batch_size=16,n_sample=32"
pytestmark = pytest.mark.slow


@pytest.fixture
def world(sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    site = create_site(engine, "shop", [])
    seed_visits(engine, site.site_id, sessions=300, days=3)
    server = Settings.from_env({}, database_url=sqlite_url, data_dir=str(tmp_path / "server"), train_on="worker")
    yield engine, site.site_id, server, sqlite_url
    engine.dispose()


def wait_run(engine, run_id, until, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = runs.get_run(engine, run_id)
        if until(run):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} stuck: {run}")


def test_a_server_with_a_worker_configured_only_queues_runs(world):
    engine, site_id, server, _ = world
    supervisor = RunSupervisor(engine, server)
    run_id = supervisor.start_run(site_id, TINY)
    run = runs.get_run(engine, run_id)
    assert (run.status, run.host, run.pid) == ("queued", None, None) and supervisor.children == {}
    assert supervisor.check() == [] and runs.fail_stale(engine, now=now_ms() + 3600_000) == []   # it waits


def test_a_worker_process_trains_queued_and_scheduled_runs_and_stops_cleanly(world, tmp_path):
    engine, site_id, server, url = world
    run_id = RunSupervisor(engine, server).start_run(site_id, TINY)          # queued by a server
    env = {**os.environ, "UPNEXT_DATABASE_URL": url, "UPNEXT_DATA_DIR": str(tmp_path / "worker"),
           "UPNEXT_TRAIN_ON": "worker", "UPNEXT_TRAIN_DEVICE": "cpu"}
    log = open(tmp_path / "worker.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "backend", "worker"], env=env, stdout=log, stderr=log)
    try:
        run = wait_run(engine, run_id, lambda r: not r.active)
        assert run.status == "succeeded", run.error
        model = next(m for m in list_models(engine, site_id) if m.id == run.model_id)
        assert model.sha256 and str(tmp_path / "worker") in model.path           # trained on the worker's disk
        # a scheduled retraining that is due: the worker ticks the schedule, the run passes the gate
        save_schedule(engine, site_id, enabled=True, every_hours=1, params=TINY, now=now_ms() - 2 * HOUR_MS)
        deadline = time.monotonic() + 120
        while not (scheduled := [r for r in runs.list_runs(engine, site_id) if r.trigger == "schedule"]):
            assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.2)
        run = wait_run(engine, scheduled[0].id, lambda r: not r.active)
        assert run.status == "succeeded", run.error
        assert live_models(engine)[site_id].id == run.model_id
        assert len([r for r in runs.list_runs(engine, site_id) if r.trigger == "schedule"]) == 1
        # a long run cancelled from the admin of another host
        long_id = RunSupervisor(engine, server).start_run(site_id, LONG)
        wait_run(engine, long_id, lambda r: r.phase == "training" and r.progress.get("pairs_done", 0) > 0)
        assert runs.request_cancel(engine, long_id, site_id) == "running"
        assert wait_run(engine, long_id, lambda r: not r.active, timeout=30).status == "cancelled"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        log.close()
    assert code == 0, (tmp_path / "worker.log").read_text()


def test_a_run_killed_on_the_worker_is_marked_failed(world, tmp_path):
    engine, site_id, server, url = world
    run_id = RunSupervisor(engine, server).start_run(site_id, LONG)
    worker_settings = Settings.from_env({}, database_url=url, data_dir=str(tmp_path / "worker"), train_on="worker")
    worker = Worker(engine, worker_settings)
    other = Worker(engine, worker_settings)
    try:
        assert worker.step() == run_id and other.step() is None              # claimed once
        run = wait_run(engine, run_id, lambda r: r.phase == "training")
        assert worker.step() is None                                         # one run at a time
        os.kill(run.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while runs.get_run(engine, run_id).active:
            assert time.monotonic() < deadline
            worker.step()
            time.sleep(0.2)
        run = runs.get_run(engine, run_id)
        assert run.status == "failed" and "killed by SIGKILL" in run.error
    finally:
        worker.supervisor.stop()
