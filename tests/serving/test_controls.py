"""The placement controls on a model's items: rule masks agree with the rules' item-by-item meaning."""
import numpy as np
import pytest

from backend.serving.controls import blocked_mask, rank_relevance, rule_mask, score_relevance
from backend.serving.item_metadata import CatalogSnapshot, ItemMeta
from backend.store.placement_rules import rule_from_json, rule_from_text

IDS = [f"i{k}" for k in range(40)]


def snapshot():
    rng = np.random.default_rng(1)
    items = {}
    for k, item_id in enumerate(IDS[:36]):             # the model's last 4 items are not in the catalogue
        items[item_id] = ItemMeta(item_id, item_id, None, None, None if k % 7 == 0 else float(rng.integers(1, 100)),
                                  "EUR", [None, "a", "b", "c"][k % 4], True,
                                  {"color": ["red", "blue"][k % 2], "size": k % 3})
    return CatalogSnapshot(1, 1, items, list(items))


@pytest.mark.parametrize("rule", [
    "category in a, c", "category not in a", "category in nowhere", "price between 10 and 50", "price >= 60",
    "price <= 2x", "price between 0.5x and 1.5x", "attribute color = red", "attribute size = 2",
])
@pytest.mark.parametrize("page_price", [None, 40.0])
def test_masks_agree_with_the_rules_item_by_item(rule, page_price):
    snap, rule = snapshot(), rule_from_text(rule)
    _, _, categories = snap.mask_for("m", IDS)
    mask = rule_mask(rule, snap, "m", IDS, categories, page_price)
    want = [rule.passes(m.category, m.price, m.attributes, page_price) if (m := snap.get(i)) else
            rule.passes(None, None, None, page_price) for i in IDS]
    if mask is None:
        assert all(want) and rule.op == "relative" and page_price is None
    else:
        assert mask.tolist() == want


def test_static_masks_are_computed_once_per_snapshot():
    snap = snapshot()
    _, _, categories = snap.mask_for("m", IDS)
    rule = rule_from_json({"field": "attribute", "name": "color", "op": "equals", "value": "red"})
    assert rule_mask(rule, snap, "m", IDS, categories, None) is rule_mask(rule, snap, "m", IDS, categories, 5.0)
    assert blocked_mask(snap, "m", ("i3", "nope", "i5"), {k: v for v, k in enumerate(IDS)}.get).tolist() == [3, 5]


def test_relevance_scales():
    assert score_relevance(np.array([3.0, 2.0, 1.0])).tolist() == [1.0, 0.5, 0.0]
    assert score_relevance(np.array([2.0, 2.0])).tolist() == [1.0, 1.0]
    assert rank_relevance(4).tolist() == [1.0, 0.75, 0.5, 0.25]
