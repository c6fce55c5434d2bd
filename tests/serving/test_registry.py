"""The registry swaps models atomically under load and refuses artifacts it cannot serve."""
from __future__ import annotations

import json
import logging
import shutil
import threading

import numpy as np
import pytest
from starlette.testclient import TestClient

from backend.app import create_app
from backend.artifact import ArtifactError, load_artifact
from backend.kernels import serving_reference as reference
from backend.serving.bundle import load_engine
from backend.serving.registry import ModelRegistry
from backend.settings import Settings
from backend.store.db import make_engine
from backend.store.items import clean_item, upsert_items
from backend.store.sites import create_site
from backend.store.trained_models import promote, register_model
from tests.kernels.random_model import save_random_gru4rec, weights
from tests.support.bundles import huge_header, out_of_range_neighbours, set_row

MiB = 1 << 20


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """Two servable models that differ in catalogue size and layers, with the answer each gives to one history."""
    root = tmp_path_factory.mktemp("registry")
    models = {}
    for name, n_items, layers in (("a", 300, [16]), ("b", 500, [8, 12])):
        path = save_random_gru4rec(root / name, n_items, layers, "shared", seed=n_items)
        arrays = load_artifact(path, mmap=False).arrays
        state = np.zeros(sum(layers), np.float32)
        for i in (1, 2, 3):
            reference.gru_step(state, i, *weights(arrays, layers, "shared"))
        top, _ = reference.score_topk(state[-layers[-1]:], arrays["Wy"], arrays["By"], 10, np.zeros(0, np.int64),
                                      np.zeros(0, np.uint8))
        models[name] = (path, n_items, top.tolist())
    return models


def broken_copies(src, root):
    """name -> a broken artifact directory made from a good one."""
    out = {}

    def copy(name):
        shutil.copytree(src, root / name)
        return root / name

    (copy("missing-file") / "layer0.Wh.npy").unlink()
    p = copy("nan")
    arr = np.load(p / "By.npy")
    arr[5] = np.nan
    np.save(p / "By.npy", arr)
    p = copy("shape-mismatch")
    np.save(p / "Wy.npy", np.zeros((3, 3), np.float32))
    for name, change in (("version", {"format_version": 2}), ("format", {"format": "upnext-popular"}),
                         ("layers", {"layers": [32]})):
        p = copy(name)
        manifest = json.loads((p / "manifest.json").read_text())
        (p / "manifest.json").write_text(json.dumps({**manifest, **change}))
    p = copy("overflow")  # finite weights whose scores overflow float32: caught by the trial run
    np.save(p / "Wy.npy", np.full(np.load(src / "Wy.npy").shape, 3e38, np.float32))
    return {name: root / name for name in ("missing-file", "nan", "shape-mismatch", "version", "format", "layers",
                                           "overflow")}


def test_publish_makes_a_model_live(two_models):
    registry = ModelRegistry(8 * MiB)
    assert registry.get(1) is None
    live = registry.publish(1, 1, two_models["a"][0])
    assert registry.get(1) is live and registry.sites() == [1]
    assert live.engine.n_items == 300 and live.states.state_size == 16 and live.states.budget_bytes == 8 * MiB
    state = live.engine.state_from_history([1, 2, 3])
    assert live.engine.top_k(state, 10)[0].tolist() == two_models["a"][2]


def test_broken_artifacts_are_refused_and_the_live_model_stays(two_models, tmp_path, caplog):
    registry = ModelRegistry(8 * MiB)
    live = registry.publish(1, 1, two_models["a"][0])
    for name, path in broken_copies(two_models["a"][0], tmp_path).items():
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="backend.serving.registry"):
            with pytest.raises(ArtifactError):
                registry.publish(1, 1, path)
        assert registry.get(1) is live, name
        refusals = [r for r in caplog.records if r.getMessage() == "model refused"]
        assert len(refusals) == 1 and refusals[0].reason and refusals[0].live == live.engine.version, name
    with pytest.raises(ArtifactError):
        registry.publish(2, 1, tmp_path / "does-not-exist")
    assert registry.get(2) is None


def test_the_state_budget_is_shared_by_the_sites(two_models):
    registry = ModelRegistry(8 * MiB)
    first = registry.publish(1, 1, two_models["a"][0])
    second = registry.publish(2, 1, two_models["b"][0])
    assert first.states.budget_bytes == second.states.budget_bytes == 4 * MiB
    registry.withdraw(2)
    assert registry.get(2) is None and first.states.budget_bytes == 8 * MiB


def test_readers_never_see_a_half_loaded_model_during_swaps(two_models, tmp_path):
    registry = ModelRegistry(8 * MiB)
    registry.publish(1, 1, two_models["a"][0])
    broken = broken_copies(two_models["b"][0], tmp_path)
    answers = {n_items: top for _, n_items, top in two_models.values()}
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: set[int] = set()

    def reader() -> None:
        try:
            while not stop.is_set():
                live = registry.get(1)  # taken once per request
                engine = live.engine
                state, _ = live.states.resolve("visitor", [1, 2, 3], True, engine.state_from_history)
                top = engine.top_k(state.state, 10)[0].tolist()
                assert top == answers[engine.n_items], engine.n_items
                seen.add(engine.n_items)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for swap in range(12):
            registry.publish(1, 1, two_models["ab"[swap % 2 == 0]][0])
            with pytest.raises(ArtifactError):
                registry.publish(1, 1, broken[sorted(broken)[swap % len(broken)]])
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    assert seen == {300, 500}


# ---------------------------------------------------------------- one site's broken model (issue 13, finding 3)

@pytest.fixture
def store(sqlite_url):
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


def make_live(engine, name, path, keys: list | None = None) -> tuple[int, int]:
    """A site whose live model record names ``path`` as it is (an old record, or one edited by hand: no checks);
    (site id, model id). Its keys are appended to ``keys``."""
    site = create_site(engine, name, [])
    model_id = register_model(engine, site.site_id, path, "gru4rec")
    promote(engine, site.site_id, model_id)
    if keys is not None:
        keys.append(site)
    return site.site_id, model_id


def test_out_of_range_neighbours_in_a_live_bundle_touch_no_other_site(two_models, store, tmp_path, caplog):
    """They raised IndexError out of sync: every later sync failed and the other sites never got their models."""
    bad = out_of_range_neighbours(shutil.copytree(two_models["a"][0], tmp_path / "bad"))
    bad_site, _ = make_live(store, "bad", bad)
    good_site, good_model = make_live(store, "good", two_models["b"][0])
    registry = ModelRegistry(8 * MiB)
    with caplog.at_level(logging.WARNING, logger="backend.serving.registry"):
        assert sorted(registry.sync(store)) == [bad_site, good_site]
    assert registry.get(good_site).model_id == good_model
    assert registry.get(bad_site).neighbours is None          # served without its broken item-to-item
    assert any("outside" in r.reason for r in caplog.records if r.getMessage().startswith("model fallbacks"))


def test_any_failure_loading_one_site_is_contained_and_logged_once(two_models, store, caplog):
    bad_site, bad_model = make_live(store, "bad", two_models["a"][0])
    good_site, _ = make_live(store, "good", two_models["b"][0])

    def load(path, **kw):
        if str(path) == str(two_models["a"][0].resolve()):
            raise RuntimeError("something no one foresaw")
        return load_engine(path, **kw)

    registry = ModelRegistry(8 * MiB, load=load)
    with caplog.at_level(logging.WARNING, logger="backend.serving.registry"):
        for _ in range(3):                                      # the sync loop's later rounds
            registry.sync(store)
    assert registry.get(bad_site) is None and registry.get(good_site) is not None
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].site == bad_site and errors[0].model == bad_model
    assert "RuntimeError: something no one foresaw" in errors[0].reason


def test_a_broken_new_model_keeps_the_previous_one(two_models, store, tmp_path):
    site_id, first = make_live(store, "shop", two_models["a"][0])
    registry = ModelRegistry(8 * MiB)
    registry.sync(store)
    broken = huge_header(shutil.copytree(two_models["b"][0], tmp_path / "huge"))
    promote(store, site_id, register_model(store, site_id, broken, "gru4rec"))
    assert registry.sync(store) == [] and registry.get(site_id).model_id == first


@pytest.mark.parametrize("mode, name", [("separate", "E"), ("shared", "By")])
def test_a_weight_row_no_trial_request_touches_cannot_go_live(tmp_path, mode, name):
    """A 3e38 row went live: the trial run scores three rows only."""
    path = set_row(save_random_gru4rec(tmp_path / "m", 300, [8], mode, seed=1), name, 7, 3e38)
    registry = ModelRegistry(8 * MiB)
    with pytest.raises(ArtifactError, match="row 7"):
        registry.publish(1, 1, path)
    assert registry.get(1) is None


def test_the_server_starts_and_serves_the_other_sites_when_a_model_is_broken(two_models, sqlite_url, tmp_path):
    """After a restart with a broken live bundle: "Application startup failed"."""
    engine = make_engine(sqlite_url)
    bad = out_of_range_neighbours(shutil.copytree(two_models["a"][0], tmp_path / "bad"))
    make_live(engine, "bad", bad)
    make_live(engine, "huge", huge_header(shutil.copytree(two_models["a"][0], tmp_path / "huge")))
    keys = []
    good_site, good_model = make_live(engine, "good", two_models["b"][0], keys)
    key = keys[0].publishable_key
    with engine.begin() as conn:
        upsert_items(conn, good_site, [clean_item({"id": f"item-{i}", "title": f"Item {i}"}) for i in range(500)])
    engine.dispose()
    settings = Settings.from_env({}, database_url=sqlite_url, data_dir=str(tmp_path / "var"))
    with TestClient(create_app(settings)) as client:
        assert client.app.state.services.models.get(good_site).model_id == good_model
        r = client.get("/v1/recommendations", params={"key": key, "placement": "product-page",
                                                      "history": "item-1,item-2,item-3", "n": 10})
        assert r.status_code == 200 and r.json()["fallback"] is None
        assert [it["id"] for it in r.json()["items"]] == [f"item-{i}" for i in two_models["b"][2]]


def test_catalogue_items_new_to_a_feature_model_get_vectors_and_can_be_clicked_and_recommended(tmp_path):
    from backend.serving.item_metadata import CatalogSnapshot, ItemMeta
    from backend.serving.recommender import RecRequest, recommend
    from backend.store.placements import PlacementConfig
    from tests.serving.feature_model import catalogue, train_feature_bundle

    reg = ModelRegistry(8 << 20)
    live = reg.publish(1, 3, train_feature_bundle(tmp_path / "m"))
    assert live.engine.features is not None and live.engine.index("new-shoe-0") is None
    same = reg.add_catalogue_items(1, catalogue())
    assert same is live                                              # nothing new: nothing changes
    grown = reg.add_catalogue_items(1, catalogue(extra=3))
    eng = grown.engine
    assert reg.get(1) is grown and eng.n_items == live.engine.n_items + 3 and eng.trained_items == live.engine.n_items
    assert grown.states is live.states and grown.neighbours.shape[0] == eng.n_items
    assert (grown.neighbours[eng.index("new-shoe-0")] == -1).all()
    # the trained items keep their scores; a session can click a new item
    shoes = eng.indices(["shoe-1", "shoe-2", "shoe-3"])
    state = eng.state_from_history(shoes)
    old_items, old_scores = live.engine.top_k(state, 5)
    trained_only = np.zeros(eng.n_items, np.uint8)
    trained_only[:eng.trained_items] = 1
    new_items, new_scores = eng.top_k(state, 5, available=trained_only)
    np.testing.assert_array_equal(new_items, old_items)
    np.testing.assert_allclose(new_scores, old_scores, rtol=1e-6)
    assert eng.state_from_history(np.append(shoes, eng.index("new-shoe-1"))).shape == state.shape
    # a shoe session: the new shoes rank above every hat
    ranking = eng.top_k(state, eng.n_items)[0].tolist()
    hats = [eng.index(f"hat-{k}") for k in range(12)]
    assert all(ranking.index(eng.index(f"new-shoe-{k}")) < min(ranking.index(h) for h in hats) for k in range(3))
    # and the recommender serves them (the catalogue has them, available)
    items = {r["id"]: ItemMeta(r["id"], r["title"], None, None, r["price"], "EUR", r["category"], True,
                               r["attributes"]) for r in catalogue(extra=3)}
    snap = CatalogSnapshot(1, 2, items, list(items))
    ans = recommend(RecRequest(1, "p", n=20, history=("shoe-1", "shoe-2", "shoe-3")), PlacementConfig("p"), grown,
                    snap)
    assert {"new-shoe-0", "new-shoe-1", "new-shoe-2"} <= set(ans.item_ids)
    # an item that left the catalogue leaves the appended ones
    assert reg.add_catalogue_items(1, catalogue(extra=1)).engine.n_items == live.engine.n_items + 1


def test_a_model_without_item_features_is_left_as_it_is(two_models):
    reg = ModelRegistry(8 << 20)
    live = reg.publish(1, 1, two_models["a"][0])
    assert reg.add_catalogue_items(1, [{"id": "brand-new", "category": "x"}]) is live
    assert reg.add_catalogue_items(2, [{"id": "brand-new"}]) is None
