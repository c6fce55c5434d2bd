"""One answer of a placement: its algorithm, its filters and the fallback chain that always fills the list.

Algorithms: ``gru4rec_next`` (the session's next items), ``gru4rec_sequence`` (an "up next" playlist rolled out
step by step), ``item_to_item`` (neighbours of the page's item), ``popular``. Filters: the session's own items
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

from dataclasses import dataclass, field

import numpy as np

from backend.algorithms import GRU4REC
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
    """Collects up to n items in order, skipping excluded and filtered ones, remembering who filled what."""

    def __init__(self, n: int, excluded: set[int], allowed: np.ndarray | None):
        self.n, self.excluded, self.allowed = n, excluded, allowed
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
            self.excluded.add(c)
            self.picked.append(c)
        if len(self.picked) > before:
            self.sources.append(source)


def recommend(req: RecRequest, cfg: PlacementConfig, model: LiveModel | None, snap: CatalogSnapshot) -> RecAnswer:
    n = max(1, min(req.n or cfg.n, 50))
    algorithm = cfg.algorithm
    seq = _sequence(req)
    if model is None:
        return _without_model(req, cfg, n, seq, snap, algorithm)
    eng = model.engine
    allowed, removed = _allowed(cfg, model, snap, req.item)
    known = eng.indices(seq)
    excluded = set(eng.indices(req.exclude).tolist())
    if req.item and eng.index(req.item) is not None:
        excluded.add(eng.index(req.item))                        # never the page's own item
    if cfg.exclude_seen:
        excluded.update(known.tolist())
    pick = _Picker(n, excluded, allowed)
    reason = None
    context = eng.index(req.item) if req.item else (int(known[-1]) if len(known) else None)

    if cfg.algorithm in GRU4REC:
        if len(known) == 0:
            reason = "unknown_item" if seq else "cold_session"
        else:
            state = _state(model, req.session, known, len(seq) < RECENT)
            exclude = np.fromiter(pick.excluded, dtype=np.int64, count=len(pick.excluded))
            if cfg.algorithm == "gru4rec_next":
                items, _ = model.scorer.top_k(state, n, exclude, allowed)
            else:
                items, _ = eng.rollout(state, n, exclude, allowed)
            pick.offer(items, algorithm)
    elif cfg.algorithm == "item_to_item":
        if context is None:
            reason = "unknown_item" if seq else "cold_session"
        else:
            pick.offer(_neighbours(model, context), algorithm)
    else:
        pick.offer(model.popular, algorithm)

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
    if len(ids) < n:
        ids += _catalogue_filler(snap, n - len(ids), set(ids) | set(req.exclude) | set(seq) | {req.item},
                                 _category(snap, req.item) if cfg.same_category else None)
        if len(ids) > len(pick.picked):
            pick.sources.append("catalogue")
    fallback = None
    if reason is not None or (pick.sources and pick.sources[0] != algorithm):
        used = [s for s in pick.sources if s != algorithm] or ["none"]
        fallback = f"{reason or 'filtered'}:{'+'.join(used)}"
    return RecAnswer(algorithm, fallback, ids, removed)


def _without_model(req, cfg, n, seq, snap, algorithm) -> RecAnswer:
    exclude = set(req.exclude) | {req.item} | (set(seq) if cfg.exclude_seen else set())
    category = _category(snap, req.item) if cfg.same_category else None
    ids = snap.similar(req.item, n, exclude, category) if req.item else []
    used = ["content"] if ids else []
    more = _catalogue_filler(snap, n - len(ids), exclude | set(ids), category)
    if more:
        ids += more
        used.append("catalogue")
    return RecAnswer(algorithm, f"no_model:{'+'.join(used) or 'none'}", ids)


def _category(snap: CatalogSnapshot, item: str | None) -> str | None:
    meta = snap.get(item) if item else None
    return meta.category if meta is not None else None


def _allowed(cfg: PlacementConfig, model: LiveModel, snap: CatalogSnapshot, item: str | None):
    """(n_items,) uint8 mask of recommendable items (or None for all), and what each filter removed."""
    eng = model.engine
    available, known, categories = snap.mask_for((model.model_id, eng.n_items), eng.item_ids)
    mask = available if cfg.only_available else known
    removed = {"unavailable": int(len(mask) - mask.sum())} if cfg.only_available else {}
    if cfg.same_category and item:
        meta = snap.get(item)
        idx = eng.index(item)
        code = categories[idx] if idx is not None else -1
        if code < 0 and meta is not None and meta.category:
            code = snap.category_code((model.model_id, eng.n_items), meta.category)
        if code >= 0:
            same = mask & (categories == code)
            removed["other_category"] = int(mask.sum() - same.sum())
            mask = same.astype(np.uint8)
    return (None if mask.all() else mask), removed


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


def _catalogue_filler(snap: CatalogSnapshot, n: int, exclude: set, category: str | None) -> list[str]:
    """The newest available catalogue items (of ``category`` when given): the last resort."""
    out = []
    for item_id in snap.newest:
        if len(out) >= n:
            break
        if item_id not in exclude and (category is None or snap.items[item_id].category == category):
            out.append(item_id)
    return out
