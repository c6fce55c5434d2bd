from starlette.testclient import TestClient

from backend.app import create_app
from backend.settings import Settings


def test_healthz_reports_a_reachable_database(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["database"] == "ok"


def test_healthz_reports_a_database_that_cannot_write(sqlite_url, tmp_path):
    """A read would pass; the health check commits a write, and says only "error" to anonymous clients."""
    import sqlite3
    import time

    s = Settings.from_env({}, database_url=sqlite_url, data_dir=str(tmp_path / "var"), db_request_timeout_s="0.2")
    with TestClient(create_app(s)) as client:
        assert client.get("/healthz").status_code == 200
        lock = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        try:
            deadline = time.monotonic() + 10
            while (r := client.get("/healthz")).status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
    assert r.status_code == 503 and r.json() == {"status": "error", "database": "error"}
    assert r.headers["retry-after"]


def test_metrics_is_prometheus_text(client):
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "# TYPE upnext_events_accepted_total counter" in r.text


def test_app_refuses_an_unmigrated_database(tmp_path):
    import pytest

    s = Settings.from_env({}, database_url=f"sqlite:///{tmp_path / 'new.db'}")
    with pytest.raises(RuntimeError, match="upnext migrate"):
        with TestClient(create_app(s)):
            pass
