"""A small site with learnable visits, for tests of training runs and the admin pages: a catalogue of
``items`` products and ``sessions`` visits spread over the ``days`` before ``end_ms``, where each step usually
goes to the item's fixed successor (so GRU4Rec and item-kNN learn something in one tiny epoch)."""
from __future__ import annotations

import random

from sqlalchemy import Engine, insert

from backend.clock import now_ms
from backend.store.items import clean_item, upsert_items
from backend.store.tables import Event

DAY_MS = 86_400_000


def item_id(i: int) -> str:
    return f"SKU-{i:03d}"


def seed_catalog(engine: Engine, site_id: int, items: int = 40) -> None:
    with engine.begin() as conn:
        upsert_items(conn, site_id, [clean_item({
            "id": item_id(i), "title": f"Product {i}", "url": f"https://shop.example/p/{i}",
            "category": f"cat-{i % 4}", "price": 10.0 + i, "currency": "EUR"}) for i in range(items)])


def seed_visits(engine: Engine, site_id: int, *, sessions: int = 300, days: int = 3, items: int = 40,
                seed: int = 0, end_ms: int | None = None, catalog: bool = True) -> int:
    """Insert the catalogue (optional) and the visits' view events; returns the number of events."""
    if catalog:
        seed_catalog(engine, site_id, items)
    rng = random.Random(seed)
    end = end_ms if end_ms is not None else now_ms()
    span = days * DAY_MS
    rows = []
    for k in range(sessions):
        t = end - span + int(span * (k + 0.5) / sessions)
        current = rng.randrange(items)
        for _ in range(rng.randrange(3, 9)):
            rows.append({"site_id": site_id, "session": f"visit{seed:03d}{k:06d}padpadpadpad", "type": "view",
                         "item": item_id(current), "client_ms": t, "received_ms": t})
            t += rng.randrange(5_000, 60_000)
            current = (current * 7 + 3) % items if rng.random() < 0.8 else rng.randrange(items)
    with engine.begin() as conn:
        conn.execute(insert(Event), rows)
    return len(rows)


def insert_views(engine: Engine, site_id: int, sessions, *, start_ms: int = 1_000, step_ms: int = 1_000) -> None:
    """One view event per item of each session in ``sessions`` (lists of item ids), sessions ``s0``, ``s1``, ...,
    one ``step_ms`` apart from ``start_ms`` on."""
    rows, t = [], start_ms
    for s, items in enumerate(sessions):
        for it in items:
            t += step_ms
            rows.append({"site_id": site_id, "session": f"s{s}", "type": "view", "item": it, "rec": None,
                         "items": None, "value": None, "currency": None, "client_ms": t, "received_ms": t})
    with engine.begin() as conn:
        conn.execute(insert(Event), rows)
