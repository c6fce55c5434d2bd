import json

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from backend.app import create_app
from backend.settings import Settings
from backend.store.tables import Event
from tests.web.conftest import ORIGIN, batch


def stored(engine):
    with engine.connect() as conn:
        return conn.execute(select(Event).order_by(Event.id)).all()


def post(client, body, origin=ORIGIN, content_type="text/plain"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = {"Content-Type": content_type}
    if origin:
        headers["Origin"] = origin
    return client.post("/v1/events", content=data, headers=headers)


def test_a_valid_batch_is_stored_and_acknowledged_with_cors(client, site, engine):
    events = [{"type": "view", "item": "SKU-123", "ts": 1732700000123},
              {"type": "rec_impression", "rec": "r_abc", "items": ["SKU-5", "SKU-9"]},
              {"type": "rec_click", "rec": "r_abc", "item": "SKU-5"},
              {"type": "play", "item": "V-7"}, {"type": "watch", "item": "V-7", "seconds": 95.5},
              {"type": "cart", "item": "SKU-5"},
              {"type": "purchase", "item": "SKU-5", "value": 49.9, "currency": "EUR"}]
    r = post(client, batch(site, events))
    assert r.status_code == 202 and r.json() == {"accepted": 7}
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "Retry-After" in r.headers["access-control-expose-headers"]
    rows = stored(engine)
    assert [e.type for e in rows] == [e["type"] for e in events]
    assert rows[0].client_ms == 1732700000123 and rows[1].items == ["SKU-5", "SKU-9"]
    assert rows[4].value == 95.5 and rows[6].value == 49.9 and rows[6].currency == "EUR"
    assert all(e.session == "sessionsessionsession01" for e in rows)


def test_json_content_type_and_no_origin_are_accepted(client, site):
    assert post(client, batch(site, [{"type": "view", "item": "A"}]), origin=None,
                content_type="application/json").status_code == 202


def test_a_site_can_require_an_origin_on_events(client, site, engine):
    """Without the switch anyone with the publishable key can post events from a script (no Origin header);
    with it such posts are refused with 403 and nothing is stored, while pages of the site still send events."""
    from backend.store.sites import set_require_origin

    svc = client.app.state.services
    one = batch(site, [{"type": "view", "item": "A"}])
    assert post(client, one, origin=None).status_code == 202
    set_require_origin(engine, "shop", True)
    svc.sites.reload()
    r = post(client, one, origin=None)
    assert r.status_code == 403 and "Origin" in r.json()["error"]
    assert post(client, one, origin=None, content_type="application/json").status_code == 403
    assert post(client, one).status_code == 202                                   # the site's own pages
    assert post(client, one, origin="https://evil.example").status_code == 403
    assert len(stored(engine)) == 2
    assert 'upnext_events_rejected_total{reason="no_origin"} 2.0' in client.get("/metrics").text
    set_require_origin(engine, "shop", False)
    svc.sites.reload()
    assert post(client, one, origin=None).status_code == 202


def test_sql_and_html_in_ids_and_titles_are_stored_verbatim(client, site, engine):
    nasty = ["'); DROP TABLE events; --", "<img src=x onerror=alert(1)>", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \" ' \\"]
    r = post(client, batch(site, [{"type": "view", "item": x} for x in nasty]))
    assert r.status_code == 202
    assert [e.item for e in stored(engine)] == nasty


@pytest.mark.parametrize("body, field", [
    ({"session": "sessionsessionsession01", "events": [{"type": "view", "item": "A"}]}, "key"),
    ({"key": "pk", "session": "short", "events": [{"type": "view", "item": "A"}]}, "session"),
    ({"key": "pk", "session": "sessionsessionsession01", "events": []}, "events"),
    ({"key": "pk", "session": "sessionsessionsession01", "events": {}}, "events"),
    ({"key": "pk", "session": "sessionsessionsession01", "events": [], "extra": 1}, "extra"),
])
def test_envelope_problems_are_named(client, body, field):
    r = post(client, body)
    assert r.status_code == 400
    assert field in [p["field"] for p in r.json()["problems"]]


@pytest.mark.parametrize("event, field", [
    ({"type": "teleport", "item": "A"}, "events[0].type"),
    ({"type": "view"}, "events[0].item"),
    ({"type": "view", "item": 123}, "events[0].item"),
    ({"type": "view", "item": "x" * 10_000}, "events[0].item"),
    ({"type": "view", "item": ""}, "events[0].item"),
    ({"type": "view", "item": "A", "ts": "yesterday"}, "events[0].ts"),
    ({"type": "view", "item": "A", "ts": 1732700000}, "events[0].ts"),          # seconds, not ms
    ({"type": "view", "item": "A", "ts": 4102444800000}, "events[0].ts"),       # far in the future
    ({"type": "view", "item": "A", "ts": True}, "events[0].ts"),
    ({"type": "watch", "item": "V", "seconds": "long"}, "events[0].seconds"),
    ({"type": "watch", "item": "V"}, "events[0].seconds"),
    ({"type": "purchase", "item": "A", "value": -5}, "events[0].value"),
    ({"type": "purchase", "item": "A", "currency": "euros"}, "events[0].currency"),
    ({"type": "rec_click", "item": "A", "rec": "<script>"}, "events[0].rec"),
    ({"type": "rec_impression", "rec": "r_1", "items": "A,B"}, "events[0].items"),
    ({"type": "view", "item": "A", "color": "red"}, "events[0].color"),
    ("not an object", "events[0]"),
])
def test_event_problems_are_named_and_nothing_is_stored(client, site, engine, event, field):
    r = post(client, batch(site, [{"type": "view", "item": "OK"}, event]))
    assert r.status_code == 400
    fields = [p["field"] for p in r.json()["problems"]]
    assert field.replace("[0]", "[1]") in fields, r.json()
    assert stored(engine) == []


def test_malformed_json(client):
    r = post(client, b'{"key": "pk", "events": [')
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    assert post(client, b"[1, 2]").status_code == 400
    assert post(client, b"\xff\xfe").status_code == 400


def test_101_events_and_a_65_kib_body_are_too_large(client, site, engine):
    r = post(client, batch(site, [{"type": "view", "item": "A"}] * 101))
    assert r.status_code == 413 and "100" in r.json()["problems"][0]["message"]
    big = batch(site, [{"type": "view", "item": "A" * 200}] * 60)
    big["events"][0]["item"] = "B" * 200
    body = json.dumps(big).encode()
    body = body + b" " * (65 * 1024 - len(body))
    assert post(client, body).status_code == 413
    assert stored(engine) == []


def test_unknown_key_and_wrong_origin(client, site, engine):
    r = post(client, {**batch(site, [{"type": "view", "item": "A"}]), "key": "pk_live_nope"})
    assert r.status_code == 401
    r = post(client, batch(site, [{"type": "view", "item": "A"}]), origin="https://evil.example")
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    assert stored(engine) == []


def test_preflight_allows_configured_origins_only(client):
    ok = client.options("/v1/events", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                                               "Access-Control-Request-Headers": "content-type"})
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in ok.headers["access-control-allow-methods"]
    bad = client.options("/v1/events", headers={"Origin": "https://evil.example",
                                                "Access-Control-Request-Method": "POST"})
    assert bad.status_code == 403 and "access-control-allow-origin" not in bad.headers


def test_rate_limits_per_session_and_per_key(settings, site, engine):
    s = Settings.from_env({}, **{**settings.__dict__, "rate_session_events": 5, "rate_key_events": 30})
    with TestClient(create_app(s)) as client:
        ten = [{"type": "view", "item": "A"}] * 10
        assert post(client, batch(site, ten)).status_code == 202           # burst: 4 s of 5/s
        assert post(client, batch(site, ten)).status_code == 202
        r = post(client, batch(site, ten))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        # other sessions of the same key go on until the key's own budget (burst 60) is spent
        codes = [post(client, batch(site, ten, session=f"othersessionothersess{i:02d}")).status_code
                 for i in range(6)]
        assert codes[:4] == [202] * 4 and codes[-1] == 429
    assert len(stored(engine)) == 60


def test_503_when_the_store_cannot_keep_up(settings, site, engine):
    s = Settings.from_env({}, **{**settings.__dict__, "max_pending_events": 100})
    with TestClient(create_app(s)) as client:
        r = post(client, batch(site, [{"type": "view", "item": "A"}] * 100))
        assert r.status_code == 202
        client.app.state.services.writer._queued_rows = 95     # as if other requests were waiting
        r = post(client, batch(site, [{"type": "view", "item": "A"}] * 10))
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        client.app.state.services.writer._queued_rows = 0


def test_rejections_are_counted_in_metrics(client, site):
    post(client, b"{")
    post(client, batch(site, [{"type": "view", "item": "A"}]), origin="https://evil.example")
    post(client, batch(site, [{"type": "view", "item": "A"}] * 3))
    text = client.get("/metrics").text
    assert 'upnext_events_rejected_total{reason="malformed"} 1.0' in text
    assert 'upnext_events_rejected_total{reason="origin"} 1.0' in text
    assert "upnext_events_accepted_total 3.0" in text
    assert 'upnext_http_request_duration_seconds_count{method="POST",route="/v1/events",status="202"} 1.0' in text
    assert "upnext_event_commit_batch_events_count" in text
