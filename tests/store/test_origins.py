import pytest

from backend.store import origins as origins_mod
from backend.store.origins import OriginLog, seen_origins
from backend.store.sites import create_site

T0 = 1_800_000_000_000


def test_noted_origins_are_counted_and_flushed(engine, site):
    log = OriginLog()
    for k in range(3):
        log.note(site.site_id, "refused", "https://shop.example.com", now=T0 + k)
    log.note(site.site_id, "events", "https://shop.example", now=T0)
    log.note(site.site_id, "events", None, now=T0)               # a script without Origin: nothing to show
    assert log.flush(engine) == 2
    log.note(site.site_id, "refused", "https://shop.example.com", now=T0 + 10)
    log.flush(engine)
    got = {(o.kind, o.origin): (o.count, o.first_ms, o.last_ms) for o in seen_origins(engine, site.site_id)}
    assert got == {("refused", "https://shop.example.com"): (4, T0, T0 + 10), ("events", "https://shop.example"): (1, T0, T0)}
    assert log.flush(engine) == 0


def test_made_up_origins_cannot_grow_the_table(engine, site, monkeypatch):
    monkeypatch.setattr(origins_mod, "MAX_PER_SITE", 3)
    log = OriginLog()
    for k in range(10):
        log.note(site.site_id, "refused", f"https://x{k}.example", now=T0)
    log.note(site.site_id, "refused", "https://" + "a" * 500 + ".example", now=T0)       # cut to 200 characters
    log.flush(engine)
    rows = seen_origins(engine, site.site_id)
    assert len(rows) == 3
    other = create_site(engine, "other", [])
    log.note(other.site_id, "refused", "https://y.example", now=T0)
    log.flush(engine)
    assert len(seen_origins(engine, other.site_id)) == 1             # the cap is per site


def test_counts_survive_a_failed_flush(engine, site, tmp_path):
    from backend.store.db import make_engine
    log = OriginLog()
    log.note(site.site_id, "events", "https://shop.example", now=T0)
    broken = make_engine(f"sqlite:///{tmp_path}/missing/dir/db.sqlite")
    with pytest.raises(Exception):
        log.flush(broken)
    log.note(site.site_id, "events", "https://shop.example", now=T0 + 5)
    log.flush(engine)
    [row] = seen_origins(engine, site.site_id)
    assert (row.count, row.first_ms, row.last_ms) == (2, T0, T0 + 5)
