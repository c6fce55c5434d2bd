"""Seed the demo site: its catalogue and two weeks of generated visits, stored as ordinary events."""
from __future__ import annotations

import random

from backend.clock import now_ms
from backend.demo.inventory import DemoItem, demo_catalog
from backend.demo.visits import demo_sessions
from backend.store.events import count_events, insert_events
from backend.store.items import clean_item, save_items

DAYS = 14


def event_rows(site_id: int, items: dict[str, DemoItem], sessions: list[list[str]], *, end_ms: int,
               seed: int = 5) -> list[dict]:
    """Events of the generated visits, spread over the ``DAYS`` before ``end_ms``; videos are played and
    watched, and some products are put in the cart and bought."""
    rng = random.Random(seed)
    span = DAYS * 86_400_000
    rows = []
    for k, visit in enumerate(sessions):
        session = f"demo{k:08d}{rng.getrandbits(64):016x}"
        t = end_ms - span + int(span * k / len(sessions))
        for item_id in visit:
            t += rng.randrange(15_000, 120_000)
            it = items[item_id]
            base = {"site_id": site_id, "session": session, "item": item_id, "rec": None, "items": None,
                    "value": None, "currency": None, "client_ms": t, "received_ms": t}
            if it.kind == "video":
                rows.append({**base, "type": "play"})
                watched = round(it.attributes["duration_s"] * rng.uniform(0.1, 1.0), 1)
                rows.append({**base, "type": "watch", "value": watched, "client_ms": t + 1000, "received_ms": t + 1000})
            else:
                rows.append({**base, "type": "view"})
                if rng.random() < 0.05:
                    rows.append({**base, "type": "cart", "client_ms": t + 500, "received_ms": t + 500})
                    if rng.random() < 0.4:
                        rows.append({**base, "type": "purchase", "value": it.price, "currency": it.currency,
                                     "client_ms": t + 900, "received_ms": t + 900})
    return rows


def seed_demo(engine, site_id: int, kind: str, *, progress=None) -> dict:
    """Import the catalogue of ``kind`` ("product": the shop, "video": the video site; always: an upsert) and,
    when the site has no events yet, the generated visits."""
    catalog = [it for it in demo_catalog() if it.kind == kind]
    save_items(engine, site_id, [clean_item(it.record()) for it in catalog])
    have = count_events(engine, site_id)
    if have:
        return {"items": len(catalog), "events": 0, "sessions": 0, "already_seeded": have}
    sessions = demo_sessions(catalog, n_shop=16_000 if kind == "product" else 0,
                             n_video=8_000 if kind == "video" else 0)
    rows = event_rows(site_id, {it.id: it for it in catalog}, sessions, end_ms=now_ms())
    insert_events(engine, rows, progress=progress)
    return {"items": len(catalog), "events": len(rows), "sessions": len(sessions), "already_seeded": 0}
