"""GET /v1/recommendations end to end in the app: keys, parameters, metadata, rec ids, served lists, live
catalogue changes, placements and model publication."""
import json

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from backend.app import create_app
from backend.publishing import publish_artifact
from backend.store.placements import PlacementConfig, save_placement
from backend.store.tables import ServedList
from tests.kernels.random_model import save_random_gru4rec
from tests.web.conftest import ORIGIN

N = 40


@pytest.fixture
def shop(engine, site, tmp_path):
    """A site with a catalogue of N items and a live random-weight model over them."""
    from backend.store.items import clean_item, upsert_items

    with engine.begin() as conn:
        upsert_items(conn, site.site_id, [clean_item({"id": f"item-{i}", "title": f"<b>Item {i}</b>",
                                                      "url": f"/p/{i}", "price": i + 0.5, "currency": "EUR",
                                                      "category": "odd" if i % 2 else "even"})
                                          for i in range(N)])
    path = save_random_gru4rec(tmp_path / "model", N, [16], seed=5)
    publish_artifact(engine, site.site_id, path, model_dir=tmp_path / "models")
    return site


@pytest.fixture
def client(settings, shop):
    with TestClient(create_app(settings)) as c:
        yield c


def ask(client, site, origin=ORIGIN, **params):
    query = {"key": site.publishable_key, "placement": "product-page", **params}
    return client.get("/v1/recommendations", params=query, headers={"Origin": origin} if origin else {})


def test_answer_has_items_with_metadata_a_rec_id_and_cors(client, shop):
    r = ask(client, shop, session="sessionsessionsession01", item="item-3", history="item-1,item-3", n=5)
    assert r.status_code == 200
    body = r.json()
    assert body["rec"].startswith("r_") and body["placement"] == "product-page"
    assert body["algorithm"] == "gru4rec_next" and body["fallback"] is None and body["arm"] is None
    assert len(body["items"]) == 5
    first = body["items"][0]
    assert set(first) == {"id", "title", "url", "image", "price", "currency"}
    assert first["title"].startswith("<b>Item")           # verbatim: the widget sets it as text
    assert not {"item-1", "item-3"} & {it["id"] for it in body["items"]}
    assert r.headers["access-control-allow-origin"] == ORIGIN and r.headers["cache-control"] == "no-store"


def test_served_lists_are_recorded_for_attribution(settings, shop, engine):
    with TestClient(create_app(settings)) as client:
        recs = [ask(client, shop, session="sessionsessionsession01", n=3).json() for _ in range(3)]
    with engine.connect() as conn:
        rows = {r.rec: r for r in conn.execute(select(ServedList)).all()}
    for body in recs:
        row = rows[body["rec"]]
        assert row.items == [it["id"] for it in body["items"]] and row.placement == "product-page"
        assert row.session == "sessionsessionsession01" and row.fallback == "cold_session:popular"


@pytest.mark.parametrize("params, field", [
    ({"placement": ""}, "placement"), ({"placement": "Bad Name"}, "placement"), ({"n": "0"}, "n"),
    ({"n": "51"}, "n"), ({"n": "x"}, "n"), ({"session": "short"}, "session"), ({"item": "x" * 300}, "item"),
    ({"history": ",".join(f"i{k}" for k in range(101))}, "history"), ({"exclude": "a\nb"}, "exclude"),
])
def test_bad_parameters_are_named(client, shop, params, field):
    r = ask(client, shop, **params)
    assert r.status_code == 400 and field in [p["field"] for p in r.json()["problems"]]


def test_unknown_key_and_wrong_origin(client, shop):
    assert client.get("/v1/recommendations", params={"key": "pk_nope", "placement": "x"}).status_code == 401
    assert ask(client, shop, origin="https://evil.example").status_code == 403
    assert ask(client, shop, origin=None).status_code == 200         # server-to-server


def test_availability_changes_take_effect_in_the_next_answer(client, shop):
    ids = [it["id"] for it in ask(client, shop, n=10).json()["items"]]
    r = client.put("/v1/items", headers={"Authorization": f"Bearer {shop.secret_key}"},
                   content=json.dumps([{"id": ids[0], "title": "gone", "available": False}]))
    assert r.status_code == 200
    again = [it["id"] for it in ask(client, shop, n=10).json()["items"]]
    assert ids[0] not in again and len(again) == 10


def test_configured_placement_and_title(client, shop, engine):
    save_placement(engine, shop.site_id, PlacementConfig("product-page", algorithm="popular", n=4, title="Top"))
    client.app.state.services.placements.invalidate()
    body = ask(client, shop).json()
    assert body["algorithm"] == "popular" and body["title"] == "Top" and len(body["items"]) == 4


def test_a_newly_published_model_is_swapped_in(client, shop, engine, tmp_path):
    svc = client.app.state.services
    before = svc.models.get(shop.site_id).model_id
    path = save_random_gru4rec(tmp_path / "model2", N, [8], seed=9)
    model_id = publish_artifact(engine, shop.site_id, path, model_dir=tmp_path / "models")
    assert svc.models.sync(engine) == [shop.site_id]
    assert svc.models.get(shop.site_id).model_id == model_id != before
    assert ask(client, shop, history="item-2", n=3).status_code == 200


def test_view_events_advance_the_session_state_at_once(client, shop):
    session = "sessionsessionsession02"
    ask(client, shop, session=session, history="item-1", n=3)
    states = client.app.state.services.models.get(shop.site_id).states
    assert states.get(session).seen == 1
    r = client.post("/v1/events", content=json.dumps({"key": shop.publishable_key, "session": session, "events": [
        {"type": "view", "item": "item-7"}, {"type": "view", "item": "item-8"}]}))
    assert r.status_code == 202
    client.app.state.services.state_pool.submit(lambda: None).result()     # wait for the state thread
    held = states.get(session)
    assert held.seen == 3 and held.recent.tolist()[-2:] == [7, 8]
    # the next request with the same history uses that state as it is (no rebuild)
    body = ask(client, shop, session=session, history="item-1,item-7,item-8", n=3).json()
    assert body["fallback"] is None


def test_start_up_loads_the_catalogue_and_masks_of_live_models(client, shop):
    """The first visitors after a (re)start wait for no catalogue load: it happened before requests were taken."""
    svc = client.app.state.services
    snap = svc.catalog._snapshots.get(shop.site_id)
    assert snap is not None and len(snap) == N
    model = svc.models.get(shop.site_id)
    assert (model.model_id, model.engine.n_items) in snap._masks


def test_recommendations_are_rate_limited_per_key(settings, shop, engine):
    """One site's flood is refused with 429 (Retry-After, readable by its page); another site's key is not."""
    from backend.settings import Settings
    from backend.store.sites import create_site

    other = create_site(engine, "other", [])
    s = Settings.from_env({}, **{**settings.__dict__, "rate_key_recommendations": 2})
    with TestClient(create_app(s)) as client:
        codes = [ask(client, shop) for _ in range(8)]                 # burst: 2 s of 2/s
        assert [r.status_code for r in codes[:4]] == [200] * 4
        limited = codes[-1]
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.headers["access-control-allow-origin"] == ORIGIN
        assert ask(client, other, origin=None).status_code == 200
        assert "upnext_recommendations_rate_limited_total 4.0" in client.get("/metrics").text


def test_an_item_put_after_training_is_recommended_and_clickable_at_once(engine, site, settings, tmp_path):
    """A model with item features: the PUT's reply comes after this process reloaded the catalogue, whose new
    item then has a vector from its features (issue 15)."""
    from backend.store.items import clean_item, upsert_items
    from tests.serving.feature_model import catalogue, train_feature_bundle

    with engine.begin() as conn:
        upsert_items(conn, site.site_id, [clean_item(r) for r in catalogue()])
    publish_artifact(engine, site.site_id, train_feature_bundle(tmp_path / "fm"), model_dir=tmp_path / "models")
    new = [{**r, "url": f"/p/{r['id']}"} for r in catalogue(extra=2)[-2:]]
    with TestClient(create_app(settings)) as client:
        history = "shoe-1,shoe-2,shoe-3"
        before = ask(client, site, placement="next", history=history, n=30).json()
        assert not any(it["id"].startswith("new-") for it in before["items"])
        r = client.put("/v1/items", headers={"Authorization": f"Bearer {site.secret_key}"}, content=json.dumps(new))
        assert r.status_code == 200
        after = ask(client, site, placement="next", history=history, n=14).json()
        ids = [it["id"] for it in after["items"]]
        assert {"new-shoe-0", "new-shoe-1"} <= set(ids) and after["fallback"] is None
        clicked = ask(client, site, placement="next", history=history + ",new-shoe-0", n=5).json()
        assert clicked["fallback"] is None and all(it["id"].startswith(("shoe", "new-shoe")) for it in
                                                   clicked["items"])
