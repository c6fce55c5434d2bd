"""The real server process: start, answer, shut down gracefully, and survive kill -9 without losing an
acknowledged event (the crash test of issue 2, at a small scale)."""
import json
import signal
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import func, select

from backend.settings import REPO_ROOT
from backend.simulation.server import ServerProcess
from backend.store.db import make_engine
from backend.store.sites import create_site
from backend.store.tables import Event

ORIGIN = "http://127.0.0.1"


def stored_per_session(url):
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(Event.session, func.count()).group_by(Event.session)).all()
    engine.dispose()
    return dict(rows)


def start_load(server, key, seconds, out_path, clients=16):
    return subprocess.Popen([sys.executable, "-m", "tests.support.loadgen", "--url", server.url, "--key", key,
                             "--origin", ORIGIN, "--clients", str(clients), "--seconds", str(seconds),
                             "--out", str(out_path)], cwd=REPO_ROOT, stderr=subprocess.DEVNULL)


@pytest.fixture
def keyed_db(db_url):
    engine = make_engine(db_url)
    keys = create_site(engine, "shop", [ORIGIN])
    engine.dispose()
    return db_url, keys


@pytest.mark.slow
def test_served_events_are_stored_and_health_answers(keyed_db, tmp_path):
    url, keys = keyed_db
    with ServerProcess(url, log_path=tmp_path / "server.log") as server:
        assert httpx.get(server.url + "/healthz").json()["status"] == "ok"
        r = httpx.post(server.url + "/v1/events", headers={"Origin": ORIGIN, "Content-Type": "text/plain"},
                       content=json.dumps({"key": keys.publishable_key, "session": "s" * 22,
                                           "events": [{"type": "view", "item": "A"}]}))
        assert r.status_code == 202
    assert stored_per_session(url) == {"s" * 22: 1}


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["sigterm", "kill-9"])
def test_no_acknowledged_event_is_lost_when_the_server_stops_under_load(keyed_db, tmp_path, stop):
    url, keys = keyed_db
    log = tmp_path / "server.log"
    server = ServerProcess(url, log_path=log, env={"UPNEXT_LOG_LEVEL": "INFO"}).start()
    out = tmp_path / "load.json"
    load = start_load(server, keys.publishable_key, seconds=4, out_path=out)
    time.sleep(2.0)
    if stop == "sigterm":
        # uvicorn shuts down gracefully, then re-raises the signal it caught
        assert server.terminate() in (0, -signal.SIGTERM)
        assert "upnext stopped" in log.read_text()
    else:
        server.kill()
    assert load.wait(60) == 0
    result = json.loads(out.read_text())
    acked = result["acked_sessions"]
    assert len(acked) > 20, f"the load barely ran: {result['status']}"
    if stop == "kill-9":   # restart on the same database: it must open cleanly and hold every acked event
        with ServerProcess(url, log_path=tmp_path / "server2.log"):
            pass
    counts = stored_per_session(url)
    missing = [s for s in acked if counts.get(s) != 10]
    assert not missing, f"{len(missing)} acknowledged batches missing after {stop}"
    # nothing half-stored: every batch is all or nothing
    assert set(counts.values()) <= {10}
