from collections import Counter

from backend.demo.inventory import demo_catalog
from backend.demo.seed import seed_demo
from backend.demo.visits import demo_sessions
from backend.store.export import export_sessions
from backend.store.items import clean_item
from backend.store.sites import create_site


def test_catalogue_is_deterministic_valid_and_unique():
    a, b = demo_catalog(), demo_catalog()
    assert a == b
    assert len({it.id for it in a}) == len(a)
    for it in a:
        clean_item(it.record())        # every record passes the catalogue validation
    kinds = Counter(it.kind for it in a)
    assert kinds["product"] >= 200 and kinds["video"] >= 200


def test_sessions_are_deterministic_and_wander_mostly_within_a_category():
    items = demo_catalog()
    cat = {it.id: it.category for it in items}
    s1 = demo_sessions(items, n_shop=500, n_video=300)
    assert s1 == demo_sessions(items, n_shop=500, n_video=300)
    steps = [(a, b) for visit in s1 for a, b in zip(visit, visit[1:])]
    assert all(a != b for a, b in steps)                               # no immediate repeats
    same = sum(cat[a] == cat[b] for a, b in steps) / len(steps)
    assert 0.5 < same < 0.95                                          # within, and across, categories
    assert not any(visit[0].startswith("SKU") and any(i.startswith("V-") for i in visit) for visit in s1)


def test_seed_stores_catalogue_and_visits_once(engine):
    site = create_site(engine, "demo-video", []).site_id
    first = seed_demo(engine, site, "video")
    assert first["events"] > 40_000 and first["items"] == sum(it.kind == "video" for it in demo_catalog())
    assert seed_demo(engine, site, "video")["events"] == 0             # idempotent
    data = export_sessions(engine, site)
    assert data.n_items == first["items"] and data.n_sessions == first["sessions"]
