"""One answer of a placement: its algorithm, its filters and the fallback chain that always fills the list.

Algorithms: ``gru4rec_next`` (the session's next items), ``gru4rec_sequence`` (an "up next" playlist rolled out
step by step), ``gru4rec_blend`` (the next items' scores plus the item-kNN neighbours of the context item and the
session's items before it, as the bundle's blend says: backend/blend.py; pure GRU4Rec without neighbours),
``item_to_item`` (neighbours of the page's item), ``popular``. Filters: the session's own items
(``exclude_seen``), the request's ``exclude``, unavailable items (``only_available``), other categories than the
page item's (``same_category``); the page's own item is never recommended. When the algorithm cannot answer
alone, the placement's fallbacks fill the list in order (item-to-item on the context item, then popular) and
finally the newest available catalogue items, so the list is never short while the catalogue has items. A page
item that no model knows (or any page item while the site has no model) is first answered by the catalogue items
most like it by their features (``content``: CatalogSnapshot.similar), before popularity.
``fallback`` in the answer says why (``cold_session``, ``unknown_item``, ``no_model``, ``filtered``) and what filled
it, e.g. ``"cold_session:popular"``, ``"unknown_item:content"``.

Runs on a worker thread (kernels release the GIL); touches memory only.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from backend.algorithms import GRU4REC
from backend.blend import blend_of, context_neighbours
from backend.serving.controls import POOL, blocked_mask, rank_relevance, rule_mask, score_relevance
from backend.serving.item_metadata import CatalogSnapshot
from backend.serving.registry import LiveModel
from backend.serving.state import RECENT, history_matches
from backend.store.placements import PlacementConfig


@dataclass(frozen=True)
class RecRequest:
    site_id: int
    placement: str
    n: int | None = None
    session: str | None = None          # None: no state kept (Global Privacy Control, server-to-server)
    item: str | None = None             # the page's item
    history: tuple[str, ...] = ()       # the session's recent item ids, oldest first (the widget keeps 20)
    exclude: tuple[str, ...] = ()       # items already shown on the page


@dataclass
class RecAnswer:
    algorithm: str
    fallback: str | None
    item_ids: list[str]
    removed: dict[str, int] = field(default_factory=dict)   # filter -> items it removed (session simulator)


def _sequence(req: RecRequest) -> list[str]:
    """What the session has seen, oldest first: ``history``, then the page's item if it is not already last."""
    seq = list(req.history)
    if req.item and (not seq or seq[-1] != req.item):
        seq.append(req.item)
    return seq


class _Picker:
    """Collects up to n items in order, skipping excluded and filtered ones and, with a category cap, items whose
    category is full; remembers who filled what."""

    def __init__(self, n: int, excluded: set[int], allowed: np.ndarray | None, categories: np.ndarray | None = None,
                 cap: int | None = None):
        self.n, self.excluded, self.allowed = n, excluded, allowed
        self.categories, self.cap = categories, cap
        self.counts: dict[int, int] = {}
        self.picked: list[int] = []
        self.sources: list[str] = []

    @property
    def full(self) -> bool:
        return len(self.picked) >= self.n

    def offer(self, candidates, source: str) -> None:
        before = len(self.picked)
        for c in candidates:
            c = int(c)
            if self.full:
                break
            if c < 0 or c in self.excluded or (self.allowed is not None and not self.allowed[c]):
                continue
            if self.cap:
                cat = int(self.categories[c])
                if cat >= 0 and self.counts.get(cat, 0) >= self.cap:
                    continue
                self.counts[cat] = self.counts.get(cat, 0) + 1
            self.excluded.add(c)
            self.picked.append(c)
        if len(self.picked) > before:
            self.sources.append(source)

    def first(self, candidates, limit: int) -> np.ndarray:
        """Up to ``limit`` of ``candidates`` this picker would take, in order (the re-ranking's pool)."""
        out = []
        for c in candidates:
            c = int(c)
            if len(out) >= limit:
                break
            if c >= 0 and c not in self.excluded and (self.allowed is None or self.allowed[c]):
                out.append(c)
        return np.array(out, dtype=np.int64)


def recommend(req: RecRequest, cfg: PlacementConfig, model: LiveModel | None, snap: CatalogSnapshot) -> RecAnswer:
    n = max(1, min(req.n or cfg.n, 50))
    algorithm = cfg.algorithm
    seq = _sequence(req)
    pins = _pins(cfg, req, snap, n)
    if model is None:
        ans = _without_model(req, cfg, n - len(pins), seq, snap, algorithm)
        ans.item_ids = _place_pins(ans.item_ids, pins)
        return ans
    eng = model.engine
    allowed, removed, categories = _allowed(cfg, model, snap, req.item)
    known = eng.indices(seq)
    excluded = set(eng.indices(req.exclude).tolist()) | set(eng.indices(p for p, _ in pins).tolist())
    if req.item and eng.index(req.item) is not None:
        excluded.add(eng.index(req.item))                        # never the page's own item
    if cfg.exclude_seen:
        excluded.update(known.tolist())
    free = n - len(pins)
    pick = _Picker(free, excluded, allowed, categories, cfg.max_per_category)
    reranking = bool(cfg.diversity or cfg.max_per_category)
    pool = max(POOL, 4 * free) if reranking else free
    reason = None
    context = eng.index(req.item) if req.item else (int(known[-1]) if len(known) else None)

    def offer(items, relevance):
        if reranking and len(items):
            items = eng.rerank(items, relevance, categories, cfg.diversity, free, cfg.max_per_category)
        pick.offer(items, algorithm)

    if free <= 0:
        pass
    elif cfg.algorithm in GRU4REC:
        if len(known) == 0:
            reason = "unknown_item" if seq else "cold_session"
        else:
            state = _state(model, req.session, known, len(seq) < RECENT)
            exclude = np.fromiter(pick.excluded, dtype=np.int64, count=len(pick.excluded))
            blend = blend_of(eng.manifest) if cfg.algorithm == "gru4rec_blend" else None
            # weight 0 (what a training run chooses when item-to-item does not help its model): GRU4Rec next,
            # through the batched scorer
            blending = blend is not None and blend.weight > 0 and context is not None and model.blend is not None
            if cfg.algorithm == "gru4rec_next" or (cfg.algorithm == "gru4rec_blend" and not blending):
                items, scores = model.scorer.top_k(state, pool, exclude, allowed)
            elif blending:
                nb, nw = context_neighbours(known[::-1], model.neighbours, model.blend, blend)
                items, scores = model.scorer.blend_top_k(state, pool, nb, nw, blend.weight, exclude, allowed)
            else:   # a playlist: each step feeds the next, so the pool is kept short (a rollout step scores all)
                items, scores = eng.rollout(state, min(2 * free, 50) if reranking else free, exclude, allowed)
            offer(items, score_relevance(scores))
    elif cfg.algorithm == "item_to_item":
        if context is None:
            reason = "unknown_item" if seq else "cold_session"
        else:
            items = pick.first(_neighbours(model, context), pool)
            offer(items, rank_relevance(len(items)))
    else:
        items = pick.first(model.popular, pool)
        offer(items, rank_relevance(len(items)))

    if not pick.full and req.item and eng.index(req.item) is None and snap.get(req.item) is not None:
        reason = reason or "unknown_item"                        # a page item the model does not know: like it
        similar = snap.similar(req.item, n, {eng.item_ids[i] for i in pick.excluded} | set(seq) | set(req.exclude),
                               _category(snap, req.item) if cfg.same_category else None)
        pick.offer(eng.indices(similar), "content")
    if not pick.full:
        reason = reason or ("filtered" if pick.picked else "no_answer")
        for strategy in cfg.fallback:
            if strategy == "item_to_item" and context is not None:
                pick.offer(_neighbours(model, context), "item_to_item")
            elif strategy == "popular":
                pick.offer(model.popular, "popular")
            if pick.full:
                break
    ids = [eng.item_ids[i] for i in pick.picked]
    if len(ids) < free:
        ids += _catalogue_filler(snap, free - len(ids), set(ids) | set(req.exclude) | set(seq) | {req.item}
                                 | {p for p, _ in pins}, cfg, req.item,
                                 _counts(snap, ids) if cfg.max_per_category or cfg.diversity else None)
        if len(ids) > len(pick.picked):
            pick.sources.append("catalogue")
    fallback = None
    if free > 0 and (reason is not None or (pick.sources and pick.sources[0] != algorithm)):
        used = [s for s in pick.sources if s != algorithm] or ["none"]
        fallback = f"{reason or 'filtered'}:{'+'.join(used)}"
    return RecAnswer(algorithm, fallback, _place_pins(ids, pins), removed)


def _pins(cfg: PlacementConfig, req: RecRequest, snap: CatalogSnapshot, n: int) -> list[tuple[str, int]]:
    """The pinned (item, position) that show on this request: not the page's item, not one the request
    excludes, not one the catalogue lacks (when the site has one) or marks unavailable (with only_available);
    at most n of them."""
    out = []
    for item, pos in cfg.pinned:
        meta = snap.get(item)
        if item == req.item or item in req.exclude or (len(snap) and meta is None):
            continue
        if cfg.only_available and meta is not None and not meta.available:
            continue
        out.append((item, pos))
    return out[:n]


def _place_pins(ids: list[str], pins: list[tuple[str, int]]) -> list[str]:
    out = list(ids)
    for item, pos in sorted(pins, key=lambda p: p[1]):
        out.insert(min(pos - 1, len(out)), item)
    return out


def _counts(snap: CatalogSnapshot, ids: list[str]) -> dict[str | None, int]:
    counts: dict[str | None, int] = {}
    for i in ids:
        c = _category(snap, i)
        counts[c] = counts.get(c, 0) + 1
    return counts


def _without_model(req, cfg, n, seq, snap, algorithm) -> RecAnswer:
    exclude = set(req.exclude) | {req.item} | (set(seq) if cfg.exclude_seen else set()) | {p for p, _ in cfg.pinned}
    capped = bool(cfg.max_per_category or cfg.diversity)
    ids: list[str] = []
    if req.item:                        # content similarity first: the page item's look-alikes by their features
        category = _category(snap, req.item) if cfg.same_category else None
        page_price, blocked, counts = _page_price(snap, req.item), set(cfg.blocked), {}
        for item_id in snap.similar(req.item, 4 * n, exclude, category):
            meta = snap.items[item_id]
            if item_id in blocked or not all(r.passes(meta.category, meta.price, meta.attributes, page_price)
                                             for r in cfg.rules):
                continue
            if cfg.max_per_category and meta.category is not None \
                    and counts.get(meta.category, 0) >= cfg.max_per_category:
                continue
            counts[meta.category] = counts.get(meta.category, 0) + 1
            ids.append(item_id)
            if len(ids) >= n:
                break
    used = ["content"] if ids else []
    more = _catalogue_filler(snap, n - len(ids), exclude | set(ids), cfg, req.item,
                             _counts(snap, ids) if capped else None)
    if more:
        ids += more
        used.append("catalogue")
    return RecAnswer(algorithm, f"no_model:{'+'.join(used) or 'none'}", ids)


def _category(snap: CatalogSnapshot, item: str | None) -> str | None:
    meta = snap.get(item) if item else None
    return meta.category if meta is not None else None


def _page_price(snap: CatalogSnapshot, item: str | None) -> float | None:
    meta = snap.get(item) if item else None
    return meta.price if meta is not None else None


def _allowed(cfg: PlacementConfig, model: LiveModel, snap: CatalogSnapshot, item: str | None):
    """(n_items,) uint8 mask of recommendable items (or None for all), what each filter removed (in order:
    availability, category, blocked items, then each rule), and the category codes of the model's items."""
    eng = model.engine
    key = (model.model_id, eng.n_items)        # one model's items; more once new items get feature vectors
    available, known, categories = snap.mask_for(key, eng.item_ids)
    mask = available if cfg.only_available else known
    removed = {"unavailable": int(len(mask) - mask.sum())} if cfg.only_available else {}
    if cfg.same_category and item:
        meta = snap.get(item)
        idx = eng.index(item)
        code = categories[idx] if idx is not None else -1
        if code < 0 and meta is not None and meta.category:
            code = snap.category_code(key, meta.category)
        if code >= 0:
            same = mask & (categories == code)
            removed["other_category"] = int(mask.sum() - same.sum())
            mask = same.astype(np.uint8)
    if cfg.blocked:
        blocked = blocked_mask(snap, key, cfg.blocked, eng.index)
        before = int(mask.sum())
        mask = mask.copy()
        mask[blocked] = 0
        removed["blocked"] = before - int(mask.sum())
    page_price = _page_price(snap, item)
    for k, rule in enumerate(cfg.rules, 1):
        keep = rule_mask(rule, snap, key, eng.item_ids, categories, page_price)
        if keep is None:
            continue
        before = int(mask.sum())
        mask = (mask & keep).astype(np.uint8)
        removed[f"rule {k}: {rule.text()}"] = before - int(mask.sum())
    return (None if mask.all() else mask), removed, categories


CATCH_UP = 3   # memory one to three pages behind the request's history is advanced, not rebuilt


def _state(model: LiveModel, session: str | None, known: np.ndarray, complete: bool) -> np.ndarray:
    """The session's state after ``known``: memory's when it matches the history, memory's advanced by the last
    few items when it is just behind (the page's view event is still on its way), else rebuilt from history."""
    eng, states = model.engine, model.states
    if session is None:
        return eng.state_from_history(known)
    held = states.get(session)
    if held is not None:
        for behind in range(0, min(CATCH_UP, len(known) - 1) + 1):
            if history_matches(held, known[:len(known) - behind], complete):
                state = held.state
                for item in known[len(known) - behind:]:
                    state = eng.advance(state, item)
                if behind:
                    states.put(session, state, np.append(held.recent, known[len(known) - behind:]),
                               held.seen + behind)
                return state
    held, _ = states.resolve(session, known, complete, eng.state_from_history)
    return held.state


def _neighbours(model: LiveModel, item: int) -> np.ndarray:
    if model.neighbours is None:
        return np.zeros(0, dtype=np.int64)
    return model.neighbours[item]


def _catalogue_filler(snap: CatalogSnapshot, n: int, exclude: set, cfg: PlacementConfig, page_item: str | None,
                      counts: dict | None = None) -> list[str]:
    """The newest available catalogue items that pass the placement's filters (the page item's category with
    ``same_category``, not blocked, every rule): the last resort. ``counts`` (category -> items already in the
    list; given with a category cap or diversity): the cap holds, and with diversity the newest item of a
    category not yet in the list goes first (the categories stand in for the vectors these items lack)."""
    category = _category(snap, page_item) if cfg.same_category else None
    page_price, blocked = _page_price(snap, page_item), set(cfg.blocked)
    eligible = []
    for item_id in snap.newest:
        if len(eligible) >= (n if counts is None else 10 * n):
            break
        meta = snap.items[item_id]
        if item_id in exclude or item_id in blocked or (category is not None and meta.category != category):
            continue
        if all(r.passes(meta.category, meta.price, meta.attributes, page_price) for r in cfg.rules):
            eligible.append(item_id)
    if counts is None:
        return eligible
    counts, out = dict(counts), []
    while eligible and len(out) < n:
        ok = [i for i in eligible if not (cfg.max_per_category and snap.items[i].category is not None
                                          and counts.get(snap.items[i].category, 0) >= cfg.max_per_category)]
        if not ok:
            break
        best = min(ok, key=lambda i: counts.get(snap.items[i].category, 0)) if cfg.diversity else ok[0]
        eligible.remove(best)
        out.append(best)
        counts[snap.items[best].category] = counts.get(snap.items[best].category, 0) + 1
    return out


def explain(req: RecRequest, cfg: PlacementConfig, model: LiveModel | None, snap: CatalogSnapshot,
            answer: RecAnswer) -> list[dict]:
    """What the placement's controls did to ``answer``: the list without them (diversity 0, no cap, no pins, no
    blocked items, no rules) compared with the list served, one entry per item removed, brought in or moved:
    ``{"item", "action": "removed"|"added"|"moved"|"pinned", "by", "from", "to"}`` (positions from 1, None where
    the item is not in that list). ``by`` names the control: ``blocked``, ``rule K: TEXT``, ``pinned``,
    ``diversity``, ``max_per_category`` (an item brought in where a removed one was: ``fills a freed place``).
    For the admin's preview and session simulator (a second answer)."""
    if not cfg.controlled:
        return []
    plain = recommend(req, replace(cfg, diversity=0.0, max_per_category=None, pinned=(), blocked=(), rules=()),
                      model, snap).item_ids
    served = answer.item_ids
    before, after = {i: k for k, i in enumerate(plain, 1)}, {i: k for k, i in enumerate(served, 1)}
    pinned = dict(cfg.pinned)
    page_price = _page_price(snap, req.item)
    counts = _counts(snap, served)
    reshuffle = "diversity" if cfg.diversity else "max_per_category" if cfg.max_per_category else "pinned"
    out = []
    for item in plain:
        if item in after:
            continue
        meta = snap.get(item)
        by = "blocked" if item in cfg.blocked else None
        for k, rule in enumerate(cfg.rules, 1):
            if by is None and meta is not None and not rule.passes(meta.category, meta.price, meta.attributes,
                                                                    page_price):
                by = f"rule {k}: {rule.text()}"
        if by is None and cfg.max_per_category and meta is not None and meta.category is not None \
                and counts.get(meta.category, 0) >= cfg.max_per_category:
            by = "max_per_category"
        out.append({"item": item, "action": "removed", "by": by or reshuffle, "from": before[item], "to": None})
    for item in served:
        if item in pinned:
            out.append({"item": item, "action": "pinned", "by": "pinned", "from": before.get(item),
                        "to": after[item]})
        elif item not in before:
            out.append({"item": item, "action": "added", "from": None, "to": after[item],
                        "by": "fills a freed place" if reshuffle == "pinned" else reshuffle})
        elif before[item] != after[item] and reshuffle != "pinned":
            out.append({"item": item, "action": "moved", "by": reshuffle, "from": before[item], "to": after[item]})
    return out
