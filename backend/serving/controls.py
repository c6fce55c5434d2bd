"""A placement's merchandising controls at serve time, on a model's items: the blocked items and the business
rules as masks (cached per catalogue snapshot, except the rules relative to the page item's price), and the
relevance that the diversity re-ranking weighs against similarity. Memory only, no database.

The rules' meaning is defined item by item in backend/store/placement_rules.py (``Rule.passes``); the masks here
are its vectorised form (tests compare the two).
"""
from __future__ import annotations

import numpy as np

from backend.serving.item_metadata import CatalogSnapshot
from backend.store.placement_rules import Rule, as_text

POOL = 50       # candidates the diversity re-ranking chooses from (at least 4x the list)


def _prices(snap: CatalogSnapshot, key: object, item_ids: list[str]) -> np.ndarray:
    def build():
        out = np.full(len(item_ids), np.nan)
        for i, item_id in enumerate(item_ids):
            meta = snap.get(item_id)
            if meta is not None and meta.price is not None:
                out[i] = meta.price
        return out
    return snap.derived((key, "prices"), build)


def rule_mask(rule: Rule, snap: CatalogSnapshot, key: object, item_ids: list[str], categories: np.ndarray,
              page_price: float | None) -> np.ndarray | None:
    """(n,) bool: the model's items that pass ``rule`` (None: the rule keeps every item on this page)."""
    if rule.field == "price" and rule.op == "relative":
        if page_price is None or page_price <= 0:
            return None
        prices = _prices(snap, key, item_ids)
        return _between(prices, rule.min, rule.max, page_price)
    return snap.derived((key, "rule", rule), lambda: _static_mask(rule, snap, key, item_ids, categories))


def _between(prices: np.ndarray, lo: float | None, hi: float | None, scale: float) -> np.ndarray:
    ok = ~np.isnan(prices)
    with np.errstate(invalid="ignore"):
        if lo is not None:
            ok &= prices >= lo * scale
        if hi is not None:
            ok &= prices <= hi * scale
    return ok


def _static_mask(rule: Rule, snap: CatalogSnapshot, key: object, item_ids: list[str],
                 categories: np.ndarray) -> np.ndarray:
    if rule.field == "category":
        codes = [c for c in (snap.category_code(key, v) for v in rule.values) if c >= 0]
        inside = np.isin(categories, codes)
        return inside if rule.op == "in" else ~inside
    if rule.field == "price":
        return _between(_prices(snap, key, item_ids), rule.min, rule.max, 1.0)
    out = np.zeros(len(item_ids), dtype=bool)
    for i, item_id in enumerate(item_ids):
        meta = snap.get(item_id)
        if meta is not None and rule.name in meta.attributes:
            out[i] = as_text(meta.attributes[rule.name]) == rule.value
    return out


def blocked_mask(snap: CatalogSnapshot, key: object, blocked: tuple[str, ...], index) -> np.ndarray:
    """Model item indices of the blocked ids (cached per snapshot)."""
    return snap.derived((key, "blocked", blocked),
                        lambda: np.array([i for i in map(index, blocked) if i is not None], dtype=np.int64))


def rank_relevance(m: int) -> np.ndarray:
    """Relevance of m candidates known only by rank (item-to-item, popular): 1 for the first, down to 1/m."""
    return 1.0 - np.arange(m, dtype=np.float64) / max(m, 1)


def score_relevance(scores: np.ndarray) -> np.ndarray:
    """Model scores scaled to [0, 1] over the candidates (all 1 when they are equal)."""
    s = np.asarray(scores, dtype=np.float64)
    if len(s) == 0:
        return s
    lo, hi = float(s.min()), float(s.max())
    return np.ones_like(s) if hi <= lo else (s - lo) / (hi - lo)
