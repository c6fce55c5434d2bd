"""Catalogue metadata in memory, per site, for answers and filters: read from the store, replaced whole when the
site's ``catalog_version`` moves (any process's write bumps it), so requests never touch the database."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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

    def category_code(self, key: object, category: str) -> int:
        """The code of ``category`` in the masks cached under ``key`` (-1: no item of the model has it)."""
        cached = self._masks.get(key)
        return cached[3].get(category, -1) if cached is not None else -1


class CatalogCache:
    """Snapshots per site. ``snapshot`` reads memory only after the first load; ``refresh`` (called by a
    background task every second, and after this process's own writes) reloads the sites whose version moved."""

    def __init__(self, engine):
        self._engine = engine
        self._snapshots: dict[int, CatalogSnapshot] = {}
        self._lock = threading.Lock()
        # one load at a time: the first requests after a start arrive together, and each loading the whole
        # catalogue (43k items: 0.3 s of CPU) made the first of them wait for seconds
        self._load_lock = threading.Lock()

    def snapshot(self, site_id: int) -> CatalogSnapshot:
        snap = self._snapshots.get(site_id)
        if snap is None:
            with self._load_lock:
                snap = self._snapshots.get(site_id)
                if snap is None:
                    snap = self._load(site_id, self._versions().get(site_id, 0))
        return snap

    def refresh(self) -> int:
        """Reload every cached site whose catalogue changed; returns how many were reloaded."""
        with self._load_lock:
            versions = self._versions()
            stale = [sid for sid, snap in self._snapshots.items() if versions.get(sid, -1) != snap.version]
            for site_id in stale:
                self._load(site_id, versions.get(site_id, 0))
        return len(stale)

    def _versions(self) -> dict[int, int]:
        return catalog_versions(self._engine)

    def _load(self, site_id: int, version: int) -> CatalogSnapshot:
        t0 = time.perf_counter()
        rows = catalog_rows(self._engine, site_id)
        items = {r.id: ItemMeta(r.id, r.title, r.url, r.image, r.price, r.currency, r.category, bool(r.available))
                 for r in rows}
        newest = [r.id for r in sorted(rows, key=lambda r: (-r.updated_ms, r.id)) if r.available]
        snap = CatalogSnapshot(site_id, version, items, newest)
        with self._lock:
            self._snapshots[site_id] = snap
        log.info("catalogue loaded", extra={"site": site_id, "items": len(items), "version": version,
                                            "seconds": round(time.perf_counter() - t0, 3)})
        return snap
