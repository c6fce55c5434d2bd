"""Catalogue metadata in memory, per site, for answers and filters: read from the store, replaced whole when the
site's ``catalog_version`` moves (any process's write bumps it), so requests never touch the database.

A snapshot also answers "items like this one" from the items' features (backend/item_features.py): the cosine of
their feature rows, built on first use per catalogue version (``similar``), for product pages that no model
knows."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.sparse as sp

from backend.item_features import ItemFeatures
from backend.store.items import catalog_rows, catalog_versions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ItemMeta:
    id: str
    title: str
    url: str | None
    image: str | None
    price: float | None
    currency: str | None
    category: str | None
    available: bool
    attributes: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        out = {"id": self.id, "title": self.title, "url": self.url, "image": self.image}
        if self.price is not None:
            out["price"] = self.price
            out["currency"] = self.currency
        return out


@dataclass
class CatalogSnapshot:
    """One site's catalogue at one version. ``newest`` lists available ids, most recently updated first (the
    last-resort filler). Masks aligned to a model's item order are cached per model (``mask_for``)."""
    site_id: int
    version: int
    items: dict[str, ItemMeta]
    newest: list[str]
    _masks: dict = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)   # derived values nest
    _content: tuple | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, item_id: str) -> ItemMeta | None:
        return self.items.get(item_id)

    def mask_for(self, key: object, item_ids: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(available, known) (n,) uint8 and category codes (n,) int32 for a model's items, cached under ``key``.

        ``known``: the catalogue has the item (any availability). An item the catalogue does not know is neither,
        unless the site has no catalogue at all (then every item may be recommended, without metadata).
        Category code -1 means none; ``category_code`` maps a category name to its code."""
        cached = self._masks.get(key)
        if cached is None:
            with self._lock:                # built once: the requests that arrive meanwhile wait for it
                cached = self._masks.get(key)
                if cached is None:
                    cached = self._masks[key] = self._build_masks(item_ids)
        return cached[:3]

    def derived(self, key: object, fn):
        """``fn()`` computed once per snapshot under ``key`` (arrays aligned to a model's items that the
        placement rules need: prices, rule masks), then shared by every request."""
        cached = self._masks.get(key)
        if cached is None:
            with self._lock:
                cached = self._masks.get(key)
                if cached is None:
                    cached = self._masks[key] = fn()
        return cached

    def _build_masks(self, item_ids: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
        n = len(item_ids)
        available = np.zeros(n, dtype=np.uint8)
        known = np.zeros(n, dtype=np.uint8)
        categories = np.full(n, -1, dtype=np.int32)
        codes: dict[str, int] = {}
        if not self.items:
            available[:] = 1
            known[:] = 1
        for i, item_id in enumerate(item_ids):
            meta = self.items.get(item_id)
            if meta is not None:
                known[i] = 1
                available[i] = meta.available
                if meta.category:
                    categories[i] = codes.setdefault(meta.category, len(codes))
        return available, known, categories, codes

    def similar(self, item_id: str, n: int, exclude: set, category: str | None = None) -> list[str]:
        """Up to ``n`` available items most like ``item_id`` by their features (cosine > 0, best first; ties: the
        newest first), never ``item_id`` or ``exclude``, of ``category`` when given."""
        ids, index, matrix, by_feature, newest_rank = self.content_index()
        row = index.get(item_id)
        if row is None or n <= 0:
            return []
        hits = (matrix[row] @ by_feature).tocsr()       # only the items sharing a feature with it, not all items
        hits.sort_indices()                             # ties beyond the newest rank: item order, as before
        candidates, sims = hits.indices[hits.data > 0], hits.data[hits.data > 0]
        order = candidates[np.lexsort((newest_rank[candidates], -sims))]
        out = []
        for k in order:
            other = ids[k]
            meta = self.items[other]
            if other == item_id or other in exclude or not meta.available or \
                    (category is not None and meta.category != category):
                continue
            out.append(other)
            if len(out) >= n:
                break
        return out

    def content_index(self):
        """(item ids, id -> row, unit-length CSR feature rows, their transpose (feature -> items, CSR), rank among
        the newest) of ``similar``, built once."""
        cached = self._content
        if cached is None:
            with self._lock:
                cached = self._content
                if cached is None:
                    ids = list(self.items)
                    feats = ItemFeatures.build(self.records())
                    matrix = sp.csr_matrix((feats.values, feats.indices, feats.indptr),
                                           shape=(len(ids), max(feats.n_features, 1)))
                    rank = {i: k for k, i in enumerate(self.newest)}
                    newest_rank = np.array([rank.get(i, len(rank)) for i in ids], np.int64)
                    cached = self._content = (ids, {i: k for k, i in enumerate(ids)}, matrix, matrix.T.tocsr(),
                                              newest_rank)
        return cached

    def records(self) -> list[dict]:
        """Every item as a catalogue record with what item features are built from."""
        return [{"id": m.id, "title": m.title, "price": m.price, "category": m.category,
                 "attributes": m.attributes or {}} for m in self.items.values()]

    def category_code(self, key: object, category: str) -> int:
        """The code of ``category`` in the masks cached under ``key`` (-1: no item of the model has it)."""
        cached = self._masks.get(key)
        return cached[3].get(category, -1) if cached is not None else -1


class CatalogCache:
    """Snapshots per site. ``snapshot`` reads memory only: it never touches the database, so answers go on while
    the database cannot answer. ``refresh`` (at start-up, every second from a background task, and after this
    process's own writes) loads every site whose catalogue version moved, new sites included; until a site's
    first load, its snapshot is empty (every item of its model may be recommended, without metadata)."""

    def __init__(self, engine, on_load: Callable[[CatalogSnapshot], None] | None = None):
        self._engine = engine
        self.on_load = on_load            # called with each snapshot loaded (new items get model vectors)
        self._snapshots: dict[int, CatalogSnapshot] = {}
        self._lock = threading.Lock()
        # one load at a time: a refresh and a model warm-up may ask for the same site together
        self._load_lock = threading.Lock()

    def snapshot(self, site_id: int) -> CatalogSnapshot:
        snap = self._snapshots.get(site_id)
        return snap if snap is not None else CatalogSnapshot(site_id, -1, {}, [])

    def load(self, site_id: int) -> CatalogSnapshot:
        """The site's snapshot, loaded from the database first when this process has none (background work)."""
        snap = self._snapshots.get(site_id)
        if snap is None:
            with self._load_lock:
                snap = self._snapshots.get(site_id)
                if snap is None:
                    snap = self._load(site_id, self._versions().get(site_id, 0))
        return snap

    def refresh(self) -> int:
        """Load every site whose catalogue changed or was never loaded; returns how many were loaded."""
        with self._load_lock:
            versions = self._versions()
            stale = [sid for sid, version in versions.items()
                     if sid not in self._snapshots or self._snapshots[sid].version != version]
            for site_id in stale:
                self._load(site_id, versions[site_id])
        return len(stale)

    def _versions(self) -> dict[int, int]:
        return catalog_versions(self._engine)

    def _load(self, site_id: int, version: int) -> CatalogSnapshot:
        t0 = time.perf_counter()
        rows = catalog_rows(self._engine, site_id)
        items = {r.id: ItemMeta(r.id, r.title, r.url, r.image, r.price, r.currency, r.category, bool(r.available),
                                r.attributes or {}) for r in rows}
        newest = [r.id for r in sorted(rows, key=lambda r: (-r.updated_ms, r.id)) if r.available]
        snap = CatalogSnapshot(site_id, version, items, newest)
        with self._lock:
            self._snapshots[site_id] = snap
        if self.on_load is not None:
            try:
                self.on_load(snap)
            except Exception:  # the catalogue is loaded whatever its listener does
                log.exception("catalogue listener failed", extra={"site": site_id})
        log.info("catalogue loaded", extra={"site": site_id, "items": len(items), "version": version,
                                            "seconds": round(time.perf_counter() - t0, 3)})
        return snap
