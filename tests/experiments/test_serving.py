"""GET /v1/recommendations with a running experiment: the arm's algorithm serves, the answer and the served
list name the arm, a session keeps its arm, a holdout answers nothing, a request without session stays outside."""
import time

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from backend.app import create_app
from backend.experiments.assignment import RunningExperiment
from backend.publishing import publish_artifact
from backend.store.experiments import Arm, change_status, create_experiment
from backend.store.items import clean_item, upsert_items
from backend.store.placements import PlacementConfig, save_placement
from backend.store.sites import create_site
from backend.store.tables import ServedList
from tests.experiments.test_assignment import session_ids
from tests.kernels.random_model import save_random_gru4rec

N = 30
ARMS = [Arm("control", "popular"), Arm("gru", "gru4rec_next"), Arm("none", "holdout")]


@pytest.fixture
def shop(engine, tmp_path):
    site = create_site(engine, "shop", [])
    with engine.begin() as conn:
        upsert_items(conn, site.site_id, [clean_item({"id": f"item-{i}", "title": f"Item {i}"}) for i in range(N)])
    publish_artifact(engine, site.site_id, save_random_gru4rec(tmp_path / "model", N, [8], seed=3),
                     model_dir=tmp_path / "models")
    save_placement(engine, site.site_id, PlacementConfig("product-page", algorithm="item_to_item", n=4))
    return site


@pytest.fixture
def experiment(engine, shop):
    exp = create_experiment(engine, shop.site_id, "product-page", "three arms", ARMS, salt="serving-test")
    change_status(engine, exp.id, "start")
    return exp


def ask(client, site, session=None, placement="product-page"):
    params = {"key": site.publishable_key, "placement": placement, "item": "item-3", "history": "item-1,item-3"}
    if session:
        params["session"] = session
    r = client.get("/v1/recommendations", params=params)
    assert r.status_code == 200
    return r.json()


def served_rows(engine) -> dict:
    deadline = time.monotonic() + 10
    while True:                                   # served lists are written in the background (50 ms batches)
        with engine.connect() as conn:
            rows = {r.rec: r for r in conn.execute(select(ServedList)).all()}
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_arms_serve_their_algorithm_and_are_named_in_answer_and_served_lists(settings, engine, shop, experiment):
    reference = RunningExperiment(experiment.id, "serving-test", tuple(ARMS))
    sessions = session_ids(60, 9)
    with TestClient(create_app(settings)) as client:
        answers = {s: [ask(client, shop, s) for _ in range(2)] for s in sessions}
    seen_arms = set()
    for s, (first, second) in answers.items():
        arm = reference.assign(s)
        seen_arms.add(arm.name)
        assert first["arm"] == second["arm"] == arm.name                       # stable within the session
        assert first["experiment"] == {"id": experiment.id, "arm": arm.name}
        if arm.holdout:
            assert first["items"] == [] and first["algorithm"] == "holdout" and first["fallback"] is None
        else:
            assert first["algorithm"] == arm.algorithm
            assert len(first["items"]) == 4
    assert seen_arms == {"control", "gru", "none"}
    time.sleep(0.2)
    rows = served_rows(engine)
    for s, pair in answers.items():
        for body in pair:
            row = rows[body["rec"]]
            assert (row.arm, row.experiment_id, row.session) == (body["arm"], experiment.id, s)
            assert row.items == [it["id"] for it in body["items"]]


def test_without_session_the_request_is_served_outside_the_experiment(settings, engine, shop, experiment):
    with TestClient(create_app(settings)) as client:
        body = ask(client, shop)
    assert body["arm"] is None and body["experiment"] == {"id": experiment.id, "arm": None, "outside": "no_session"}
    assert body["algorithm"] == "item_to_item" and len(body["items"]) == 4      # the placement's own setting
    row = served_rows(engine)[body["rec"]]
    assert row.arm is None and row.experiment_id is None


def test_no_experiment_paused_or_elsewhere_means_no_arm(settings, engine, shop, experiment):
    session = session_ids(1, 10)[0]
    with TestClient(create_app(settings)) as client:
        other = ask(client, shop, session, placement="home")
        assert other["arm"] is None and other["experiment"] is None
        assert ask(client, shop, session)["arm"] is not None
        change_status(engine, experiment.id, "pause")
        client.app.state.services.experiments.invalidate(shop.site_id)   # what the admin page does on change
        paused = ask(client, shop, session)
    assert paused["arm"] is None and paused["experiment"] is None and paused["algorithm"] == "item_to_item"


def test_an_arm_serves_its_own_settings_of_the_placement(engine, shop):
    """Two settings of one algorithm: the arm's rules and pins replace the placement's, the rest stays."""
    from backend.experiments.routing import Routing, recommend_routed
    from backend.serving.item_metadata import CatalogCache
    from backend.serving.recommender import RecRequest, recommend
    from backend.serving.registry import ModelRegistry
    from backend.store.placements import controls_from_json
    model = ModelRegistry(64 << 20)
    model.sync(engine)
    live, snap = model.get(shop.site_id), CatalogCache(engine).load(shop.site_id)
    cfg = PlacementConfig("product-page", algorithm="item_to_item", n=4)
    pinned = Arm("pinned", "popular", 1, controls_from_json({"pinned": [{"item": "item-29", "position": 1}],
                                                             "blocked": ["item-0"]}))
    req = RecRequest(site_id=shop.site_id, placement="product-page", session="s" * 22)
    plain = recommend_routed(req, cfg, live, snap, Routing(1, Arm("plain", "popular")))
    shaped = recommend_routed(req, cfg, live, snap, Routing(1, pinned))
    assert plain.item_ids == recommend(req, PlacementConfig("p", algorithm="popular", n=4), live, snap).item_ids
    assert shaped.item_ids[0] == "item-29" and "item-0" not in shaped.item_ids and len(shaped.item_ids) == 4
    assert "item-0" in plain.item_ids
