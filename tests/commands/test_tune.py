"""`upnext tune`: one line per finished trial, the best parameters, resuming, the site's retraining parameters,
parallel trials from the real command, and clear refusals."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.cli import main
from backend.retraining.scheduler import HOUR_MS, Scheduler, save_schedule
from backend.settings import REPO_ROOT
from backend.store import runs
from backend.store.db import make_engine
from backend.store.schedules import get_schedule
from backend.store.tuning_studies import get_study, study_trials
from tests.retraining.test_scheduler import RecordingSupervisor
from tests.support.sessions_tsv import write_sessions_tsv

FAST = "n_epochs=1,layers=16"


@pytest.fixture
def train_file(tmp_path):
    return write_sessions_tsv(tmp_path / "train.tsv")


def tune(capsys, *args):
    code = main(["tune", "--fix", FAST, "--jobs", "1", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_tune_prints_each_trial_and_the_best_and_resumes(db_url, monkeypatch, capsys, train_file, engine):
    monkeypatch.setenv("UPNEXT_DATABASE_URL", db_url)
    code, out, err = tune(capsys, "--data", str(train_file), "--trials", "2")
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("trial ")]
    assert len(lines) == 2 and lines[0].startswith("trial 0 [1/2] served R@20 ") and " best " in lines[0]
    assert "best parameters: loss=" in out
    study = get_study(engine, "data-train")
    assert len(study_trials(engine, study.id)) == 2
    code, out, err = tune(capsys, "--data", str(train_file), "--trials", "3", "--json")
    report = json.loads(out)
    assert code == 0 and report["trials"] == 3 and report["new_trials"] == 1 and report["study"] == "data-train"
    assert report["best"]["value"] == max(t["value"] for t in report["per_trial"])


def test_the_best_parameters_become_the_sites_scheduled_retraining(db_url, monkeypatch, capsys, train_file,
                                                                   engine, site):
    monkeypatch.setenv("UPNEXT_DATABASE_URL", db_url)
    t0 = 1_800_000_000_000
    save_schedule(engine, site.site_id, enabled=True, every_hours=6, params="layers=16", now=t0)
    code, out, err = tune(capsys, "--data", str(train_file), "--trials", "2", "--site", "shop", "--json")
    best = json.loads(out)["best"]["params"]
    assert code == 0 and get_study(engine, "site-shop").site_id == site.site_id
    sched = get_schedule(engine, site.site_id)
    assert (sched.params, sched.enabled, sched.every_hours, sched.next_run_ms) == (best, True, 6.0, t0 + 6 * HOUR_MS)
    supervisor = RecordingSupervisor(engine)
    [run_id] = Scheduler(engine, supervisor).tick(now=t0 + 6 * HOUR_MS)
    assert runs.get_run(engine, run_id).params == best                      # the scheduled run trains with them


def test_a_site_without_a_schedule_gets_a_disabled_one_with_the_best_parameters(db_url, monkeypatch, capsys,
                                                                              train_file, engine, site):
    monkeypatch.setenv("UPNEXT_DATABASE_URL", db_url)
    code, out, err = tune(capsys, "--data", str(train_file), "--trials", "1", "--site", "shop", "--json")
    sched = get_schedule(engine, site.site_id)
    assert code == 0 and sched.params == json.loads(out)["best"]["params"] and not sched.enabled


@pytest.mark.parametrize("args, message", [
    (["--trials", "0"], "--trials must be at least 1"),
    (["--trials", "2", "--data", "/nonexistent/train.tsv"], "no such file"),
    (["--trials", "2", "--site", "nosuchsite"], "no site named 'nosuchsite'"),
    (["--trials", "2"], "give --data FILE, or --site NAME"),
    (["--trials", "2", "--jobs", "0", "--data", "TRAIN"], "jobs must be at least 1"),
])
def test_bad_input_is_a_clear_error(sqlite_url, monkeypatch, capsys, train_file, args, message):
    monkeypatch.setenv("UPNEXT_DATABASE_URL", sqlite_url)
    args = [str(train_file) if a == "TRAIN" else a for a in args]
    code = main(["tune", *args])
    err = capsys.readouterr().err
    assert code == 1 and message in err and "Traceback" not in err


def test_an_unmigrated_database_is_a_clear_error(tmp_path, monkeypatch, capsys, train_file):
    monkeypatch.setenv("UPNEXT_DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    assert main(["tune", "--data", str(train_file), "--trials", "1"]) == 1
    assert "upnext migrate" in capsys.readouterr().err


def test_the_command_runs_parallel_trials_in_worker_processes(sqlite_url, tmp_path, train_file):
    """`python -m backend tune --jobs 2`: the real command's spawned workers (which never run
    backend/__main__.py: multiprocessing skips a package's __main__ in its children) run the trials."""
    env = {**os.environ, "UPNEXT_DATABASE_URL": sqlite_url, "UPNEXT_DATA_DIR": str(tmp_path / "var")}
    done = subprocess.run([sys.executable, "-m", "backend", "tune", "--data", str(train_file), "--trials", "2",
                           "--jobs", "2", "--fix", FAST, "--json"], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["new_trials"] == 2 and all(t["state"] == "complete" for t in report["per_trial"])
    assert done.stderr.count("tuning study") == 1


def test_sigterm_stops_the_workers_and_a_rerun_completes_the_study(sqlite_url, tmp_path, train_file):
    """Stop `upnext tune` after its first finished trial (SIGTERM, as a service manager or `kill` does), rerun:
    no worker is left training, and the study ends with exactly --trials trials."""
    env = {**os.environ, "UPNEXT_DATABASE_URL": sqlite_url, "UPNEXT_DATA_DIR": str(tmp_path / "var")}
    args = [sys.executable, "-m", "backend", "tune", "--data", str(train_file), "--trials", "4", "--jobs", "2",
            "--fix", "n_epochs=30,layers=16"]
    proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    workers = []
    try:
        for line in proc.stderr:
            if line.startswith("trial "):
                workers = _children(proc.pid)
                proc.send_signal(signal.SIGTERM)
                break
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and workers
    time.sleep(1)
    assert not [pid for pid in workers if _alive(pid)]
    engine = make_engine(sqlite_url)
    try:
        stopped = len(study_trials(engine, get_study(engine, "data-train").id))
        assert 1 <= stopped < 4
        done = subprocess.run(args + ["--json"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
        report = json.loads(done.stdout)
        assert report["trials"] == 4 and report["new_trials"] == 4 - stopped
        assert len(study_trials(engine, get_study(engine, "data-train").id)) == 4
    finally:
        engine.dispose()


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False
