import pytest

from backend.store.sites import (SiteDirectory, SiteError, create_site, hash_secret, list_sites,
                                 normalise_origin, rotate_keys, set_origins, set_require_origin)


def test_create_site_returns_keys_and_stores_only_the_secret_hash(engine):
    keys = create_site(engine, "shop", ["https://Shop.example:443/"])
    assert keys.publishable_key.startswith("pk_live_") and keys.secret_key.startswith("sk_live_")
    assert keys.allowed_origins == ("https://shop.example",)
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT secret_key_hash FROM sites").scalar()
    assert stored == hash_secret(keys.secret_key) and keys.secret_key not in stored
    assert [s["name"] for s in list_sites(engine)] == ["shop"]


def test_duplicate_name_and_bad_names_are_refused(engine):
    create_site(engine, "shop", [])
    with pytest.raises(SiteError, match="exists"):
        create_site(engine, "shop", [])
    for bad in ["", " lead", "x" * 101, "<script>"]:
        with pytest.raises(SiteError):
            create_site(engine, bad, [])


@pytest.mark.parametrize("origin", ["shop.example", "ftp://shop.example", "https://shop.example/path",
                                    "https://user@shop.example", "javascript:alert(1)"])
def test_bad_origins_are_refused(origin):
    with pytest.raises(SiteError):
        normalise_origin(origin)


def test_directory_finds_keys_and_sees_rotation(engine):
    keys = create_site(engine, "shop", ["https://shop.example"])
    directory = SiteDirectory(engine, miss_reload_s=0)
    assert directory.by_publishable_key(keys.publishable_key) is None    # lookups never read the database
    directory.reload()
    site = directory.by_publishable_key(keys.publishable_key)
    assert site.name == "shop" and site.allows_origin("https://shop.example")
    assert not site.allows_origin("https://evil.example")
    assert directory.by_secret_key(keys.secret_key).id == site.id
    assert directory.by_publishable_key("pk_live_unknown") is None
    new = rotate_keys(engine, "shop")
    assert directory.by_publishable_key(keys.publishable_key) is not None  # cached until a refresh
    directory.reload()
    assert directory.by_publishable_key(keys.publishable_key) is None
    assert directory.by_publishable_key(new.publishable_key).id == site.id
    assert directory.by_secret_key(keys.secret_key) is None


def test_set_origins_and_wildcard(engine):
    create_site(engine, "shop", [])
    assert set_origins(engine, "shop", ["*"]) == ("*",)
    directory = SiteDirectory(engine)
    directory.reload()
    assert directory.any_site_allows("https://anything.example")
    with pytest.raises(SiteError):
        set_origins(engine, "nope", ["https://x.example"])


def test_directory_refreshes_in_the_background_after_a_miss_at_most_once_per_period(engine):
    directory = SiteDirectory(engine, refresh_s=3600, miss_reload_s=3600)
    directory.reload()
    assert not directory.refresh_if_due()                    # fresh, and nobody missed
    keys = create_site(engine, "shop", ["https://shop.example"])
    assert directory.by_publishable_key(keys.publishable_key) is None      # answered from memory: a miss
    assert directory.refresh_if_due()                        # the background task reloads once...
    assert directory.by_publishable_key(keys.publishable_key).name == "shop"
    assert directory.by_publishable_key("pk_live_unknown") is None
    assert not directory.refresh_if_due()                    # ...and not again within miss_reload_s


def test_directory_keeps_serving_what_it_has_when_a_reload_fails(tmp_path, engine):
    from backend.store.db import make_engine

    keys = create_site(engine, "shop", [])
    directory = SiteDirectory(engine, refresh_s=0, miss_reload_s=0)
    directory.reload()
    broken = make_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}")    # no tables: every query fails
    directory._engine = broken
    with pytest.raises(Exception):
        directory.refresh_if_due()
    assert directory.by_publishable_key(keys.publishable_key).name == "shop"
    broken.dispose()


def test_require_origin_is_stored_listed_and_seen_by_the_directory(engine):
    keys = create_site(engine, "shop", ["https://shop.example"])
    strict = create_site(engine, "strict", [], require_origin=True)
    directory = SiteDirectory(engine)
    directory.reload()
    assert not directory.by_publishable_key(keys.publishable_key).require_origin
    assert directory.by_publishable_key(strict.publishable_key).require_origin
    assert set_require_origin(engine, "shop", True) is True
    directory.reload()
    assert directory.by_publishable_key(keys.publishable_key).require_origin
    assert [s["require_origin"] for s in list_sites(engine)] == [True, True]
    with pytest.raises(SiteError, match="no site named"):
        set_require_origin(engine, "nope", True)
