from starlette.testclient import TestClient

from backend.app import create_app
from backend.settings import Settings


def test_healthz_reports_a_reachable_database(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["database"] == "ok"


def test_healthz_reports_an_unreachable_database(settings, monkeypatch):
    with TestClient(create_app(settings)) as client:
        engine = client.app.state.services.engine

        def down(*a, **k):
            raise ConnectionError("database went away")
        monkeypatch.setattr(engine, "connect", down)
        r = client.get("/healthz")
    assert r.status_code == 503 and "went away" in r.json()["database"]


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
