"""The placement logic: algorithms, filters and the fallback chain, on a random-weight model."""
import numpy as np
import pytest

from backend.artifact import save_artifact
from backend.serving.item_metadata import CatalogSnapshot, ItemMeta
from backend.serving.recommender import RecRequest, recommend
from backend.serving.registry import ModelRegistry
from backend.store.placements import PlacementConfig
from tests.kernels.random_model import random_gru4rec

N = 60
CATEGORY = {f"item-{i}": ("even" if i % 2 == 0 else "odd") for i in range(N)}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("bundle") / "model"
    manifest, arrays = random_gru4rec(N, [16], seed=3)
    manifest["support"] = list(range(N, 0, -1))           # item-0 is the most popular
    save_artifact(path, manifest, arrays)
    # item-kNN neighbours: item i -> i+1, i+2, ... (as item ids, in the kNN artifact's own order: reversed)
    ids = [f"item-{i}" for i in reversed(range(N))]
    pos = {item_id: k for k, item_id in enumerate(ids)}
    neighbours = np.array([[pos[f"item-{(int(i.split('-')[1]) + d) % N}"] for d in range(1, 6)] for i in ids],
                          dtype=np.int32)
    save_artifact(path / "itemknn", {"format": "upnext-itemknn", "item_ids": ids, "support": [1] * N, "params": {}},
                  {"neighbours": neighbours, "similarities": np.ones(neighbours.shape, np.float32)})
    return path


@pytest.fixture(scope="module")
def model(bundle):
    return ModelRegistry(64 << 20).publish(1, 7, bundle)


def snapshot(unavailable=(), catalogue=True):
    items = {}
    if catalogue:
        for i in range(N):
            item_id = f"item-{i}"
            items[item_id] = ItemMeta(item_id, f"Item {i}", f"/p/{i}", None, 1.0 + i, "EUR", CATEGORY[item_id],
                                      item_id not in unavailable)
    newest = [i for i in sorted(items, key=lambda s: -int(s.split("-")[1])) if items[i].available]
    return CatalogSnapshot(1, 1, items, newest)


def ask(model, snap=None, **kw):
    cfg = kw.pop("cfg", PlacementConfig("p"))
    return recommend(RecRequest(site_id=1, placement="p", **kw), cfg, model, snap or snapshot())


def test_gru4rec_next_is_the_engine_top_k_without_seen_and_excluded_items(model):
    history = ("item-5", "item-9", "item-11")
    ans = ask(model, n=8, session="s" * 22, history=history, item="item-11", exclude=("item-30",))
    eng = model.engine
    state = eng.state_from_history(eng.indices(history))
    expected, _ = eng.top_k(state, 8, eng.indices(history + ("item-30",)))
    assert ans.item_ids == [eng.item_ids[i] for i in expected]
    assert ans.algorithm == "gru4rec_next" and ans.fallback is None and len(ans.item_ids) == 8
    # the same request again is answered from the session's stored state, with the same list
    assert ask(model, n=8, session="s" * 22, history=history, item="item-11", exclude=("item-30",)).item_ids \
        == ans.item_ids
    assert "s" * 22 in model.states


def test_a_cold_session_is_filled_with_popular_items(model):
    ans = ask(model, n=5)
    assert ans.fallback == "cold_session:popular"
    assert ans.item_ids == [f"item-{i}" for i in range(5)]


def test_an_unknown_item_falls_back_and_unavailable_items_never_show(model):
    snap = snapshot(unavailable={"item-0", "item-2"})
    ans = ask(model, snap, n=5, item="not-in-the-model")
    assert ans.fallback == "unknown_item:popular"
    assert ans.item_ids == ["item-1", "item-3", "item-4", "item-5", "item-6"]
    assert ans.removed["unavailable"] == 2
    for _ in range(3):
        got = ask(model, snap, n=20, history=("item-7", "item-8"))
        assert not {"item-0", "item-2"} & set(got.item_ids) and len(got.item_ids) == 20


def test_item_to_item_then_popular_and_same_category(model):
    cfg = PlacementConfig("p", algorithm="item_to_item")
    ans = ask(model, n=7, item="item-10", cfg=cfg)
    assert ans.item_ids[:5] == ["item-11", "item-12", "item-13", "item-14", "item-15"]
    assert ans.fallback == "filtered:popular" and len(ans.item_ids) == 7
    same = ask(model, n=4, item="item-10", cfg=PlacementConfig("p", algorithm="item_to_item", same_category=True))
    assert same.item_ids[:2] == ["item-12", "item-14"]
    assert all(CATEGORY[i] == "even" for i in same.item_ids) and len(same.item_ids) == 4
    assert same.removed["other_category"] == N // 2


def test_sequence_is_the_engine_rollout(model):
    cfg = PlacementConfig("p", algorithm="gru4rec_sequence")
    ans = ask(model, n=6, history=("item-3",), item="item-4", cfg=cfg)
    eng = model.engine
    expected, _ = eng.rollout(eng.state_from_history(eng.indices(["item-3", "item-4"])), 6,
                              eng.indices(["item-3", "item-4"]))
    assert ans.item_ids == [eng.item_ids[i] for i in expected] and ans.algorithm == "gru4rec_sequence"


def test_popular_algorithm_and_no_exclusion_of_seen_when_asked(model):
    cfg = PlacementConfig("p", algorithm="popular", exclude_seen=False)
    ans = ask(model, n=3, history=("item-0",), cfg=cfg)
    assert ans.item_ids == ["item-0", "item-1", "item-2"] and ans.fallback is None


def test_the_list_is_never_short_while_the_catalogue_has_items(model):
    # popular covers every model item; exclude most of them: the fallbacks run dry, the catalogue fills in
    exclude = tuple(f"item-{i}" for i in range(N - 3))
    ans = ask(model, n=3, exclude=exclude)
    assert sorted(ans.item_ids) == ["item-57", "item-58", "item-59"]
    ans = ask(model, n=10, exclude=exclude)
    assert len(ans.item_ids) == 3        # only 3 items are left anywhere


def test_without_a_model_the_newest_catalogue_items_answer(model):
    ans = recommend(RecRequest(site_id=1, placement="p", n=4, history=("item-59",)), PlacementConfig("p"), None,
                    snapshot())
    assert ans.fallback == "no_model:catalogue" and ans.item_ids == ["item-58", "item-57", "item-56", "item-55"]


def _shop(extra=()):
    """Shoes and hats with features; ``extra``: items no model knows."""
    items = {}
    rows = [(f"item-{i}", "Shoes > Running" if i % 2 == 0 else "Hats", "Acme" if i % 4 == 0 else "Other")
            for i in range(N)] + list(extra)
    for item_id, category, brand in rows:
        items[item_id] = ItemMeta(item_id, f"{category} {item_id}", None, None, 10.0, "EUR", category, True,
                                  {"brand": brand})
    return CatalogSnapshot(1, 1, items, sorted(items, key=lambda s: s))


def test_a_product_page_without_a_model_shows_items_like_it(model):
    snap = _shop()
    ans = recommend(RecRequest(site_id=1, placement="p", n=5, item="item-8"), PlacementConfig("p"), None, snap)
    assert ans.fallback == "no_model:content" and len(ans.item_ids) == 5 and "item-8" not in ans.item_ids
    for other in ans.item_ids:                          # same category and brand: the most alike
        assert snap.get(other).category == "Shoes > Running" and snap.get(other).attributes == {"brand": "Acme"}
    unavailable = CatalogSnapshot(1, 1, {k: ItemMeta(**{**v.__dict__, "available": k == "item-8"})
                                         for k, v in snap.items.items()}, ["item-8"])
    ans = recommend(RecRequest(site_id=1, placement="p", n=5, item="item-8"), PlacementConfig("p"), None,
                    unavailable)
    assert ans.item_ids == [] and ans.fallback == "no_model:none"


def test_a_page_item_the_model_does_not_know_gets_items_like_it_before_popular(model):
    snap = _shop(extra=[("new-shoe", "Shoes > Running", "Acme")])
    cfg = PlacementConfig("p", algorithm="item_to_item")
    ans = ask(model, snap, n=4, item="new-shoe", cfg=cfg)
    assert ans.fallback == "unknown_item:content"
    assert all(snap.get(i).category == "Shoes > Running" and snap.get(i).attributes == {"brand": "Acme"}
               for i in ans.item_ids)
    ans = ask(model, snap, n=4, item="new-shoe")                                   # gru4rec_next: the same
    assert ans.fallback == "unknown_item:content" and len(ans.item_ids) == 4
    ans = ask(model, snap, n=4, item="item-8", cfg=cfg)                            # a known item: item-to-item
    assert "content" not in (ans.fallback or "")


def test_a_site_without_catalogue_gets_model_items_without_metadata(model):
    ans = ask(model, snapshot(catalogue=False), n=4, history=("item-1",))
    assert len(ans.item_ids) == 4 and ans.fallback is None


def test_memory_a_page_behind_is_advanced_to_the_requests_history(model):
    session = "behindbehindbehindbeh1"
    first = ("item-1", "item-2")
    ask(model, n=5, session=session, history=first)
    assert model.states.get(session).seen == 2
    later = first + ("item-3", "item-4")              # the two view events have not reached this process
    ans = ask(model, n=5, session=session, history=later)
    held = model.states.get(session)
    assert held.seen == 4 and held.recent.tolist() == [1, 2, 3, 4]
    eng = model.engine
    np.testing.assert_allclose(held.state, eng.state_from_history([1, 2, 3, 4]), rtol=1e-5, atol=1e-6)
    assert ans.item_ids == ask(model, n=5, history=later).item_ids    # same as a stateless answer
