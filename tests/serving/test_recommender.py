"""The placement logic: algorithms, filters and the fallback chain, on a random-weight model."""
import json
import shutil

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


def next_cfg(**kw) -> PlacementConfig:
    """Placement "p" serving GRU4Rec next items (new placements serve the blend): what these tests were written for."""
    return PlacementConfig("p", algorithm="gru4rec_next", **kw)


def ask(model, snap=None, **kw):
    cfg = kw.pop("cfg", next_cfg())
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
    ans = recommend(RecRequest(site_id=1, placement="p", n=4, history=("item-59",)), next_cfg(), None,
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
    ans = recommend(RecRequest(site_id=1, placement="p", n=5, item="item-8"), next_cfg(), None, snap)
    assert ans.fallback == "no_model:content" and len(ans.item_ids) == 5 and "item-8" not in ans.item_ids
    for other in ans.item_ids:                          # same category and brand: the most alike
        assert snap.get(other).category == "Shoes > Running" and snap.get(other).attributes == {"brand": "Acme"}
    unavailable = CatalogSnapshot(1, 1, {k: ItemMeta(**{**v.__dict__, "available": k == "item-8"})
                                         for k, v in snap.items.items()}, ["item-8"])
    ans = recommend(RecRequest(site_id=1, placement="p", n=5, item="item-8"), next_cfg(), None,
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


# ---------------------------------------------------------------- merchandising controls (issue 17)

from backend.serving.recommender import RecAnswer, explain  # noqa: E402
from backend.store.placement_rules import rule_from_text  # noqa: E402

SHOP_CATEGORIES = ("shoes", "bags", "hats", "belts")


def shop():
    """The test catalogue with four categories, prices 1..60 and a colour attribute."""
    items = {}
    for i in range(N):
        item_id = f"item-{i}"
        items[item_id] = ItemMeta(item_id, f"Item {i}", f"/p/{i}", None, 1.0 + i, "EUR",
                                  SHOP_CATEGORIES[(i // 3) % 4], True, {"color": "red" if i % 3 else "blue"})
    return CatalogSnapshot(1, 1, items, sorted(items, key=lambda s: -int(s.split("-")[1])))


HISTORY = ("item-5", "item-9", "item-11")


def test_no_controls_and_diversity_zero_serve_todays_list(model):
    plain = ask(model, shop(), n=8, history=HISTORY)
    assert ask(model, shop(), n=8, history=HISTORY, cfg=next_cfg(diversity=0.0)).item_ids == plain.item_ids
    assert explain(RecRequest(1, "p", n=8, history=HISTORY), next_cfg(), model, shop(), plain) == []


def test_diversity_changes_the_list_keeps_it_full_and_spreads_the_vectors(model):
    eng = model.engine
    vec = np.asarray(eng._vectors, dtype=np.float64) / eng._norms[:, None]

    def spread(ids):
        v = vec[eng.indices(ids)]
        return float((1 - v @ v.T)[np.triu_indices(len(ids), 1)].mean())

    plain = ask(model, shop(), n=8, history=HISTORY).item_ids
    diverse = ask(model, shop(), n=8, history=HISTORY, cfg=next_cfg(diversity=0.8)).item_ids
    assert len(diverse) == 8 and len(set(diverse)) == 8 and diverse != plain
    assert spread(diverse) > spread(plain)
    assert diverse[0] == plain[0]                      # the first pick is always the most relevant
    steps = explain(RecRequest(1, "p", n=8, history=HISTORY), next_cfg(diversity=0.8), model, shop(),
                    RecAnswer("gru4rec_next", None, diverse))
    assert {s["by"] for s in steps} == {"diversity"} and {s["action"] for s in steps} >= {"removed", "added"}


def test_max_per_category_holds_through_the_fallbacks(model):
    cfg = next_cfg(max_per_category=2, fallback=("popular",))
    for kw in ({"history": HISTORY}, {}):              # the model's list, and a cold session filled by popular
        ans = ask(model, shop(), n=8, cfg=cfg, **kw)
        cats = [shop().get(i).category for i in ans.item_ids]
        assert len(ans.item_ids) == 8 and max(cats.count(c) for c in cats) <= 2


def test_blocked_items_and_rules_never_show_and_the_removals_are_counted(model):
    cfg = next_cfg(n=10, blocked=("item-0", "item-1"),
                          rules=(rule_from_text("category not in hats"), rule_from_text("price <= 40"),
                                 rule_from_text("attribute color = red")))
    snap = shop()
    for kw in ({"history": HISTORY}, {}, {"item": "item-20"}):
        ans = ask(model, snap, cfg=cfg, **kw)
        assert len(ans.item_ids) == 10
        for i in ans.item_ids:
            meta = snap.get(i)
            assert i not in cfg.blocked and meta.category != "hats" and meta.price <= 40
            assert meta.attributes["color"] == "red"
    assert ans.removed["blocked"] == 2 and ans.removed["rule 1: category not in hats"] > 0
    plain = ask(model, snap, n=10)
    steps = explain(RecRequest(1, "p", n=10), cfg, model, snap, ask(model, snap, cfg=cfg))
    assert {"item": "item-0", "action": "removed", "by": "blocked", "from": 1, "to": None} in steps
    removed_by = {s["item"]: s["by"] for s in steps if s["action"] == "removed"}
    assert removed_by["item-3"] == "rule 3: attribute color = red"          # item-3 is blue
    assert removed_by["item-6"] == "rule 1: category not in hats"
    assert set(removed_by) == set(plain.item_ids) - set(ask(model, snap, cfg=cfg).item_ids)


def test_a_price_relative_to_the_page_item(model):
    cfg = PlacementConfig("p", n=6, algorithm="popular", rules=(rule_from_text("price between 0.5x and 2x"),))
    ans = ask(model, shop(), cfg=cfg, item="item-19")       # price 20: 10..40
    assert all(10 <= shop().get(i).price <= 40 for i in ans.item_ids) and len(ans.item_ids) == 6
    assert ask(model, shop(), cfg=cfg).item_ids == ask(model, shop(), n=6, cfg=PlacementConfig(
        "p", algorithm="popular")).item_ids                     # no page item: the rule keeps everything


def test_pinned_items_take_their_positions(model):
    cfg = PlacementConfig("p", n=6, algorithm="popular", pinned=(("item-50", 1), ("item-40", 4), ("gone", 2)))
    ans = ask(model, shop(), cfg=cfg)
    assert ans.item_ids == ["item-50", "item-0", "item-1", "item-40", "item-2", "item-3"]   # "gone": not in catalogue
    on_its_page = ask(model, shop(), cfg=cfg, item="item-50")
    assert "item-50" not in on_its_page.item_ids and on_its_page.item_ids[3] == "item-40"
    steps = explain(RecRequest(1, "p"), cfg, model, shop(), ans)
    assert {"item": "item-40", "action": "pinned", "by": "pinned", "from": None, "to": 4} in steps
    assert {s["item"] for s in steps if s["action"] == "removed"} == {"item-4", "item-5"}


def test_controls_hold_without_a_model(model):
    cfg = next_cfg(n=5, pinned=(("item-1", 2),), rules=(rule_from_text("category in shoes, bags"),),
                          max_per_category=2, diversity=0.5)
    ans = recommend(RecRequest(1, "p"), cfg, None, shop())
    cats = [shop().get(i).category for i in ans.item_ids]
    assert ans.item_ids[1] == "item-1" and len(ans.item_ids) == 5
    unpinned = cats[:1] + cats[2:]                           # a pinned item counts in no category cap
    assert set(unpinned) == {"shoes", "bags"} and max(unpinned.count(c) for c in unpinned) <= 2


def blend_expected(model, history, contexts, exclude, n, w, decay=0.5):
    """The blend by its definition (backend/blend.py), in numpy: softmax of the GRU4Rec scores + w * the context
    items' (newest first, shares decay^d over their sum) neighbours' normalised similarities (the fixture's item
    i: i+1..i+5, similarity 1 each)."""
    eng = model.engine
    state = eng.state_from_history(eng.indices(history))
    logits, _ = eng.top_k(state, N)
    scores = np.zeros(N)
    scores[logits] = _
    p = np.exp(scores - scores.max())
    p /= p.sum()
    shares = decay ** np.arange(len(contexts))
    shares /= shares.sum()
    for item, share in zip(contexts, shares):
        c = int(item.split("-")[1])
        for d in range(1, 6):
            p[eng.index(f"item-{(c + d) % N}")] += w * share * 0.2
    p[eng.indices(history + exclude)] = -np.inf
    return [eng.item_ids[i] for i in np.argsort(-p, kind="stable")[:n]]


def _with_blend(bundle, path, blend):
    shutil.copytree(bundle, path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["blend"] = blend
    (path / "manifest.json").write_text(json.dumps(manifest))
    return ModelRegistry(64 << 20).publish(1, 8, path)


@pytest.fixture(scope="module")
def blended(bundle, tmp_path_factory):
    """The fixture bundle with a blend chosen for it: w 0.5 on the last 3 items."""
    return _with_blend(bundle, tmp_path_factory.mktemp("blended") / "model",
                       {"weight": 0.5, "context": 3, "chosen": "held-out"})


def test_gru4rec_blend_adds_the_page_items_neighbours_to_the_gru4rec_scores(blended):
    model = blended
    history = ("item-5", "item-9", "item-11")
    cfg = PlacementConfig("p", algorithm="gru4rec_blend")
    ans = ask(model, n=8, session="b" * 22, history=history, item="item-11", exclude=("item-30",), cfg=cfg)
    assert ans.algorithm == "gru4rec_blend" and ans.fallback is None
    # the bundle's blend: w 0.5 on the page item and the two before it
    assert ans.item_ids == blend_expected(model, history, ("item-11", "item-9", "item-5"), ("item-30",), 8, 0.5)
    assert ans.item_ids != blend_expected(model, history, ("item-11",), ("item-30",), 8, 0.5)
    plain = ask(model, n=8, session="b" * 22, history=history, item="item-11", exclude=("item-30",)).item_ids
    assert ans.item_ids != plain                                   # the neighbours moved the list


@pytest.fixture(scope="module")
def heavy_blend(bundle, tmp_path_factory):
    """The fixture bundle with a blend weight of 50 in its manifest and no context: a bundle from before the
    blend took the session's earlier items, whose weight was chosen for the page item alone."""
    return _with_blend(bundle, tmp_path_factory.mktemp("heavy") / "model", {"weight": 50.0})


def test_gru4rec_blend_uses_the_weight_in_the_bundle(heavy_blend):
    cfg = PlacementConfig("p", algorithm="gru4rec_blend")
    ans = ask(heavy_blend, n=8, history=("item-3", "item-20"), item="item-20", cfg=cfg)
    assert ans.item_ids == blend_expected(heavy_blend, ("item-3", "item-20"), ("item-20",), (), 8, 50.0)
    assert set(ans.item_ids[:5]) == {f"item-{i}" for i in range(21, 26)}     # item-to-item dominates


def test_gru4rec_blend_with_weight_0_is_gru4rec_next_through_the_batched_scorer(bundle, tmp_path, monkeypatch):
    """A training run chooses weight 0 when item-to-item does not help its model: then the blend is GRU4Rec next,
    scored by the batching scorer (not the unbatched blend kernel)."""
    zero = _with_blend(bundle, tmp_path / "model", {"weight": 0.0, "context": 3, "chosen": "held-out"})
    history = ("item-3", "item-20")
    blend, plain = (ask(zero, n=8, history=history, item="item-20", cfg=PlacementConfig("p", algorithm=a))
                    for a in ("gru4rec_blend", "gru4rec_next"))
    assert blend.algorithm == "gru4rec_blend" and blend.item_ids == plain.item_ids

    def no_blend_kernel(*args, **kwargs):
        raise AssertionError("weight 0 must not take the blend kernel")
    monkeypatch.setattr(type(zero.engine), "blend_top_k", no_blend_kernel)
    monkeypatch.setattr(type(zero.engine), "blend_top_k_many", no_blend_kernel)
    assert ask(zero, n=8, history=history, item="item-20",
               cfg=PlacementConfig("p", algorithm="gru4rec_blend")).item_ids == plain.item_ids


def test_gru4rec_blend_of_a_bundle_without_a_blend_is_gru4rec_next(model):
    """No weight was chosen or given for this model: no weight is right for every model, so GRU4Rec alone."""
    history = ("item-5", "item-9", "item-11")
    blend, plain = (ask(model, n=8, history=history, item="item-11", cfg=PlacementConfig("p", algorithm=a))
                    for a in ("gru4rec_blend", "gru4rec_next"))
    assert blend.algorithm == "gru4rec_blend" and blend.item_ids == plain.item_ids


def test_gru4rec_blend_without_a_known_context_is_gru4rec_next(blended):
    model = blended
    history = ("item-5", "item-9")
    blend, plain = (ask(model, n=6, history=history, item="not-in-the-model", cfg=PlacementConfig("p", algorithm=a))
                    for a in ("gru4rec_blend", "gru4rec_next"))
    assert blend.algorithm == "gru4rec_blend" and blend.item_ids == plain.item_ids and len(blend.item_ids) == 6
    # no page item: the context is the session's last items, so the blend differs from plain GRU4Rec
    no_page = ask(model, n=6, history=history, cfg=PlacementConfig("p", algorithm="gru4rec_blend"))
    assert no_page.item_ids == blend_expected(model, history, ("item-9", "item-5"), (), 6, 0.5)
