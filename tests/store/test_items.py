import pytest
from sqlalchemy import select

from backend.store.items import ItemInvalid, clean_item, count_items, delete_item, set_available, upsert_items
from backend.store.sites import create_site
from backend.store.tables import Item


def test_clean_item_accepts_a_full_record():
    row = clean_item({"id": "SKU-1", "title": "Shoe", "url": "/p/1", "image": "https://cdn.example/1.png",
                      "price": 49.9, "currency": "EUR", "category": "shoes", "available": False,
                      "attributes": {"color": "red"}})
    assert row["available"] is False and row["price"] == 49.9 and row["attributes"] == {"color": "red"}


@pytest.mark.parametrize("record, field", [
    ({"title": "no id"}, "id"),
    ({"id": "x" * 257}, "id"),
    ({"id": "a\nb"}, "id"),
    ({"id": "A", "url": "javascript:alert(1)"}, "url"),
    ({"id": "A", "image": "//evil.example/x.png"}, "image"),
    ({"id": "A", "price": -1}, "price"),
    ({"id": "A", "price": "12"}, "price"),
    ({"id": "A", "currency": "euro"}, "currency"),
    ({"id": "A", "available": "yes"}, "available"),
    ({"id": "A", "attributes": [1]}, "attributes"),
    ({"id": "A", "colour": "red"}, "colour"),
])
def test_clean_item_names_the_bad_field(record, field):
    with pytest.raises(ItemInvalid) as info:
        clean_item(record)
    assert field in [f for f, _ in info.value.problems]


@pytest.mark.parametrize("link", [
    "/\\evil.example/x",          # browsers read a backslash as a slash: //evil.example/x
    "/\t/evil.example",            # and drop tabs and line breaks: //evil.example
    "/\n/evil.example", "/\r/evil.example", "\\\\evil.example/x", "/ /evil.example", "/p/\x00",
    "https://shop.example/a b", "https:\\\\evil.example", " //evil.example", "/\u3000/evil.example",
])
def test_links_refuse_backslashes_whitespace_and_control_characters(link):
    for field in ("url", "image"):
        with pytest.raises(ItemInvalid) as info:
            clean_item({"id": "A", field: link})
        assert [f for f, _ in info.value.problems] == [field]


def test_links_may_be_site_paths_or_http_urls_with_surrounding_spaces_trimmed():
    row = clean_item({"id": "A", "url": " /p/1?q=a%20b#top ", "image": "https://cdn.example/x%20y.png"})
    assert row["url"] == "/p/1?q=a%20b#top" and row["image"] == "https://cdn.example/x%20y.png"


def test_csv_values_are_coerced():
    row = clean_item({"id": "A", "price": "12.5", "available": "no"}, coerce_text=True)
    assert row["price"] == 12.5 and row["available"] is False


def test_upsert_inserts_then_updates_and_delete(engine):
    site = create_site(engine, "shop", [])
    html = "<img src=x onerror=alert(1)>"
    sql = "x'); DROP TABLE items; --"
    with engine.begin() as conn:
        upsert_items(conn, site.site_id, [clean_item({"id": sql, "title": html, "price": 1})])
        upsert_items(conn, site.site_id, [clean_item({"id": sql, "title": "second", "price": 2})])
    with engine.connect() as conn:
        rows = conn.execute(select(Item.id, Item.title, Item.price)).all()
    assert rows == [(sql, "second", 2.0)]
    assert set_available(engine, site.site_id, sql, False)
    assert count_items(engine, site.site_id) == 1
    assert delete_item(engine, site.site_id, sql) and not delete_item(engine, site.site_id, sql)


def test_every_catalogue_write_bumps_the_site_version(engine):
    from backend.store.tables import Site

    site = create_site(engine, "shop", [])

    def version():
        with engine.connect() as conn:
            return conn.execute(select(Site.catalog_version)).scalar()

    with engine.begin() as conn:
        upsert_items(conn, site.site_id, [clean_item({"id": "A"})])
    assert version() == 1
    set_available(engine, site.site_id, "A", False)
    assert version() == 2
    delete_item(engine, site.site_id, "A")
    delete_item(engine, site.site_id, "A")     # nothing deleted: no bump
    assert version() == 3
