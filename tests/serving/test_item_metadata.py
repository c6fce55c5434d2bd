"""CatalogCache and CatalogSnapshot under concurrent first requests: one load, one mask build."""
from __future__ import annotations

import threading
import time

from backend.serving.item_metadata import CatalogCache
from backend.store.items import clean_item, upsert_items
from backend.store.sites import create_site


def _shop(engine, n=50):
    keys = create_site(engine, "shop", ["https://shop.example"])
    with engine.begin() as conn:
        upsert_items(conn, keys.site_id, [clean_item({"id": f"i{k}", "title": f"Item {k}", "url": f"/p/{k}",
                                                      "category": "a" if k % 2 else "b"}) for k in range(n)])
    return keys.site_id


def _together(n, fn):
    """fn() from n threads released at once; their results."""
    barrier, results = threading.Barrier(n), [None] * n

    def run(k):
        barrier.wait()
        results[k] = fn()
    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_first_requests_load_the_catalogue_once(engine, monkeypatch):
    site = _shop(engine)
    cache, loads = CatalogCache(engine), []
    real_load = cache._load

    def slow_load(site_id, version):
        loads.append(site_id)
        time.sleep(0.05)                # long enough for every thread to arrive while it runs
        return real_load(site_id, version)
    monkeypatch.setattr(cache, "_load", slow_load)
    snaps = _together(8, lambda: cache.load(site))
    assert loads == [site]
    assert all(s is snaps[0] for s in snaps) and len(snaps[0]) == 50


def test_concurrent_mask_requests_build_the_masks_once(engine, monkeypatch):
    site = _shop(engine)
    snap = CatalogCache(engine).load(site)
    builds, real_build = [], snap._build_masks

    def slow_build(item_ids):
        builds.append(len(item_ids))
        time.sleep(0.05)
        return real_build(item_ids)
    monkeypatch.setattr(snap, "_build_masks", slow_build)
    ids = [f"i{k}" for k in range(60)]          # ten the catalogue does not know
    masks = _together(8, lambda: snap.mask_for("model-1", ids))
    assert builds == [60]
    available, known, categories = masks[0]
    assert known.sum() == 50 and available.sum() == 50 and (categories[50:] == -1).all()
    assert all(m[0] is available for m in masks)
    assert snap.category_code("model-1", "a") >= 0 and snap.category_code("model-1", "zzz") == -1


def test_snapshots_come_from_memory_and_refresh_loads_new_and_changed_sites(engine):
    cache = CatalogCache(engine)
    site = _shop(engine, n=3)
    assert len(cache.snapshot(site)) == 0                  # never loaded: empty, and no query on the request path
    assert cache.refresh() == 1 and len(cache.snapshot(site)) == 3
    assert cache.refresh() == 0
    with engine.begin() as conn:
        upsert_items(conn, site, [clean_item({"id": "new", "title": "New", "url": "/p/new"})])
    assert len(cache.snapshot(site)) == 3                  # until the next refresh
    assert cache.refresh() == 1 and cache.snapshot(site).get("new") is not None


def test_a_loaded_catalogue_is_handed_to_its_listener_with_attributes_and_a_failing_one_changes_nothing(engine):
    site = _shop(engine, n=4)
    with engine.begin() as conn:
        upsert_items(conn, site, [clean_item({"id": "x", "title": "Trail shoe", "category": "Shoes > Trail",
                                              "attributes": {"brand": "Acme"}})])
    seen = []
    cache = CatalogCache(engine, on_load=lambda snap: seen.append(snap))
    assert cache.refresh() == 1 and seen[0].site_id == site
    record = {r["id"]: r for r in seen[0].records()}["x"]
    assert record["attributes"] == {"brand": "Acme"} and record["category"] == "Shoes > Trail"

    def broken(snap):
        raise RuntimeError("listener bug")
    cache = CatalogCache(engine, on_load=broken)
    assert cache.refresh() == 1 and len(cache.snapshot(site)) == 5
