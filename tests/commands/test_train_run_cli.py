"""`upnext train-run RUN_ID` (started by the server, see tests/retraining/test_supervisor.py for real runs): clear
refusals, and a run that is no longer queued is left alone."""
import os
import subprocess
import sys

from backend.settings import REPO_ROOT
from backend.store import runs
from backend.store.db import make_engine, migrate
from backend.store.sites import create_site
from tests.support.visits import seed_visits


def _train_run(run_id: str, url: str, tmp_path, **env_vars):
    env = {**os.environ, "UPNEXT_DATABASE_URL": url, "UPNEXT_DATA_DIR": str(tmp_path / "var"), **env_vars}
    return subprocess.run([sys.executable, "-m", "backend", "train-run", run_id], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_refusals_are_messages(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    done = _train_run("1", url, tmp_path)
    assert done.returncode == 1 and "run `upnext migrate`" in done.stderr and "Traceback" not in done.stderr
    migrate(url)
    done = _train_run("7", url, tmp_path)
    assert done.returncode == 1 and "no training run 7" in done.stderr


def test_a_run_that_is_not_queued_is_left_alone(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    migrate(url)
    engine = make_engine(url)
    site = create_site(engine, "shop", [])
    run_id = runs.create_run(engine, site.site_id, "layers=16")
    runs.request_cancel(engine, run_id, site.site_id)
    done = _train_run(str(run_id), url, tmp_path)
    assert done.returncode == 0 and f"run {run_id}: cancelled" in done.stdout
    run = runs.get_run(engine, run_id)
    assert run.status == "cancelled" and run.pid is None
    engine.dispose()


def test_a_run_told_to_use_a_gpu_that_is_not_there_fails_with_the_reason(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    migrate(url)
    engine = make_engine(url)
    site = create_site(engine, "shop", [])
    seed_visits(engine, site.site_id, sessions=60, days=2)
    run_id = runs.create_run(engine, site.site_id, "layers=16,n_epochs=1")
    done = _train_run(str(run_id), url, tmp_path, UPNEXT_TRAIN_DEVICE="cuda", NUMBA_ENABLE_CUDASIM="0")
    run = runs.get_run(engine, run_id)
    assert run.status == "failed", (run, done.stderr[-2000:])
    assert "UPNEXT_TRAIN_DEVICE=cuda" in run.error and "no CUDA GPU" in run.error
    engine.dispose()
