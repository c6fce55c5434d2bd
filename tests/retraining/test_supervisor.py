"""Background training runs as real processes (``upnext train-run``) on a tiny site: success, the gate,
cancel, a killed run, a server that stops, and runs whose process vanished."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.artifact import save_artifact
from backend.gru4rec.params import ParamsError
from backend.publishing import publish_artifact
from backend.retraining.supervisor import RunSupervisor
from backend.settings import Settings
from backend.store import runs
from backend.store.db import make_engine
from backend.store.sites import create_site
from backend.store.trained_models import list_models, live_models
from tests.kernels.random_model import random_gru4rec
from tests.support.training import TINY
from tests.support.visits import item_id, seed_visits

LONG = "layers=16,n_epochs=100000,batch_size=16,n_sample=32"     # trains until stopped
pytestmark = pytest.mark.slow


@pytest.fixture
def world(sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    site = create_site(engine, "shop", [])
    settings = Settings.from_env({}, database_url=sqlite_url, data_dir=str(tmp_path / "var"))
    supervisor = RunSupervisor(engine, settings)
    yield engine, site.site_id, supervisor, settings
    supervisor.stop()
    engine.dispose()


def wait(supervisor, run_id, until, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        supervisor.check()
        run = runs.get_run(supervisor.engine, run_id)
        if until(run):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} stuck: {run}")


def finished(run):
    return not run.active


def training(run):
    return run.phase == "training" and run.progress.get("pairs_done", 0) > 0


def test_a_run_trains_scores_on_the_held_out_day_and_registers_its_model(world, tmp_path):
    engine, site_id, supervisor, settings = world
    seed_visits(engine, site_id, sessions=300, days=3)
    live = publish_artifact(engine, site_id, _random_model_of_the_shop(tmp_path / "live"),
                            model_dir=tmp_path / "models")
    run = wait(supervisor, supervisor.start_run(site_id, TINY), finished)
    assert run.status == "succeeded", run.error
    assert run.progress["epoch"] == 1 and run.progress["fraction"] == 1.0
    assert Path(run.log_path).exists() and run.pid and run.host == socket.gethostname()
    model = next(m for m in list_models(engine, site_id) if m.id == run.model_id)
    assert not model.live and live_models(engine)[site_id].id == live      # a manual run waits for a promote
    assert model.params["layers"] == [16] and Path(model.path).is_dir()
    assert model.metrics["heldout"]["kind"] == "day" and model.metrics["heldout"]["sessions"] >= 90
    assert 0 < model.metrics["recall@20"] <= 1 and model.metrics["run_id"] == run.id
    assert set(model.metrics["baselines"]) == {"popular", "itemknn"}
    scores = run.result["metrics"]
    assert scores["gru4rec"]["predictions"] == scores["popular"]["predictions"] == scores["itemknn"]["predictions"]
    # the visits follow a fixed successor 80% of the time: item-kNN learns it, popularity cannot
    assert scores["itemknn"]["recall@20"] > scores["popular"]["recall@20"]
    assert run.result["data"]["sessions"] + model.metrics["heldout"]["sessions"] == 300
    # the live model is scored on the same day, on the same predictions (both know every item)
    other = run.result["other_models"][str(live)]
    assert other["predictions"] == scores["gru4rec"]["predictions"] and 0 <= other["recall@20"] <= 1
    # both protocols everywhere the held-out day is scored
    for got in (model.metrics, *model.metrics["baselines"].values(), *scores.values(), other):
        assert 0 <= got["served"]["recall@20"] <= 1 and 0 <= got["served"]["mrr@20"] <= got["served"]["recall@20"]


def _random_model_of_the_shop(path):
    """Random GRU4Rec weights over the shop's 40 items."""
    manifest, arrays = random_gru4rec(40, [8], seed=5)
    manifest["item_ids"] = [item_id(i) for i in range(40)]
    return save_artifact(path, manifest, arrays)


def test_a_gated_run_goes_live_when_nothing_is_live(world):
    engine, site_id, supervisor, _ = world
    seed_visits(engine, site_id, sessions=300, days=3)
    run = wait(supervisor, supervisor.start_run(site_id, TINY, trigger="schedule", gate=True), finished)
    assert run.status == "succeeded", run.error
    assert run.result["gate"]["passed"] and run.result["gate"]["promoted"]
    assert live_models(engine)[site_id].id == run.model_id


def test_a_cancelled_run_stops_and_leaves_no_model(world):
    engine, site_id, supervisor, settings = world
    seed_visits(engine, site_id, sessions=300, days=3)
    run_id = supervisor.start_run(site_id, LONG)
    wait(supervisor, run_id, training)
    assert supervisor.cancel(run_id, site_id) == "running"
    run = wait(supervisor, run_id, finished, timeout=30)
    assert run.status == "cancelled" and run.model_id is None
    assert list_models(engine, site_id) == []
    assert not list((settings.model_dir).glob(f"*run{run_id}-*"))


def test_a_cancel_stops_a_run_of_a_server_that_ignores_sigint(world):
    """A server started with nohup or as a background job of a script ignores SIGINT, and its run processes
    inherit that: the cancel (which interrupts the run's main thread as SIGINT would) must still stop the run."""
    engine, site_id, supervisor, settings = world
    seed_visits(engine, site_id, sessions=300, days=3)
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)     # inherited by the run's process
    try:
        run_id = supervisor.start_run(site_id, LONG)
    finally:
        signal.signal(signal.SIGINT, before)
    wait(supervisor, run_id, training)
    assert supervisor.cancel(run_id, site_id) == "running"
    run = wait(supervisor, run_id, finished, timeout=30)
    assert run.status == "cancelled" and run.model_id is None


def test_a_killed_run_is_marked_failed(world):
    engine, site_id, supervisor, _ = world
    seed_visits(engine, site_id, sessions=300, days=3)
    run_id = supervisor.start_run(site_id, LONG)
    run = wait(supervisor, run_id, training)
    os.kill(run.pid, signal.SIGKILL)
    run = wait(supervisor, run_id, finished, timeout=30)
    assert run.status == "failed" and "killed by SIGKILL" in run.error


def test_stopping_the_server_stops_its_runs(world):
    engine, site_id, supervisor, _ = world
    seed_visits(engine, site_id, sessions=300, days=3)
    run_id = supervisor.start_run(site_id, LONG)
    wait(supervisor, run_id, training)
    supervisor.stop()
    run = runs.get_run(engine, run_id)
    assert run.status == "failed" and "shut down" in run.error


def test_a_run_whose_process_is_gone_is_marked_failed_by_any_server_on_its_host(world):
    engine, site_id, supervisor, _ = world
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run_id = runs.create_run(engine, site_id, TINY)
    runs.mark_started(engine, run_id, gone.pid, socket.gethostname())     # started by a worker that has died
    assert supervisor.check() == [run_id]
    assert "is gone" in runs.get_run(engine, run_id).error


def test_too_little_data_fails_with_a_reason(world):
    engine, site_id, supervisor, _ = world
    run = wait(supervisor, supervisor.start_run(site_id, TINY), finished)
    assert run.status == "failed" and "not enough to train" in run.error


def test_bad_parameters_are_refused_before_any_run_exists(world):
    engine, site_id, supervisor, _ = world
    with pytest.raises(ParamsError, match="layers"):
        supervisor.start_run(site_id, "layers=banana")
    assert runs.list_runs(engine, site_id) == []
