"""The catalogue page: imports with a validation report, search, availability."""
import fcntl
import json
import os
import time

from starlette.testclient import TestClient

from backend.app import create_app
from backend.store.items import count_items
from tests.support.visits import seed_catalog

CSV = ("id,title,price,currency,available,attributes.colour\n"
       "A-1,Blue shoe,49.9,EUR,true,blue\n"
       "A-2,<script>alert(1)</script>,12,EUR,no,\n"
       "A-3,Bad price,cheap,EUR,true,\n"
       ",No id,1,EUR,true,\n")


def _import(admin, shop, name, content, fmt=""):
    return admin.post(f"/admin/sites/{shop.site_id}/catalog/import", data={"csrf": admin.csrf, "format": fmt},
                      files={"file": (name, content.encode(), "application/octet-stream")})


def test_a_csv_import_stores_the_good_rows_and_reports_the_others(admin, shop, engine, svc):
    r = _import(admin, shop, "items.csv", CSV)
    assert r.status_code == 200
    html = r.text
    assert "<strong>4</strong> rows read, <strong>2</strong> stored, <strong>2</strong> refused" in html
    assert "<td>4</td><td>A-3</td>" in html and "must be a non-negative number" in html
    assert "<td>5</td><td>–</td>" in html and "required" in html
    assert count_items(engine, shop.site_id) == 2
    snap = svc.catalog.snapshot(shop.site_id)
    assert snap.get("A-2") is not None and not snap.get("A-2").available
    listing = admin.get(f"/admin/sites/{shop.site_id}/catalog").text
    assert "<script>alert(1)</script>" not in listing and "&lt;script&gt;alert(1)&lt;/script&gt;" in listing


def test_json_lines_with_a_broken_line(admin, shop, engine):
    lines = "\n".join([json.dumps({"id": "J-1", "title": "One"}), "{not json", json.dumps({"id": "J-2"})])
    r = _import(admin, shop, "upload.txt", lines, fmt="jsonl")
    assert r.status_code == 200 and "<strong>2</strong> stored" in r.text and "not valid JSON" in r.text
    assert count_items(engine, shop.site_id) == 2


def test_unreadable_files_are_refused_with_the_reason(admin, shop, engine):
    r = _import(admin, shop, "items.csv", "sku,name\n1,x\n")
    assert r.status_code == 400 and "CSV header must name id" in r.text
    r = _import(admin, shop, "items.xlsx", "whatever")
    assert r.status_code == 400 and "items.xlsx" in r.text and "cannot tell the format" in r.text
    r = admin.post(f"/admin/sites/{shop.site_id}/catalog/import", data={"csrf": admin.csrf})
    assert r.status_code == 400 and "Choose a CSV or JSON lines file" in r.text
    assert count_items(engine, shop.site_id) == 0


def test_search_and_availability(admin, shop, engine, svc):
    seed_catalog(engine, shop.site_id, items=60)
    base = f"/admin/sites/{shop.site_id}/catalog"
    html = admin.get(base + "?q=product 1").text          # Product 1, 10..19
    assert "11 matching" in html and "SKU-019" in html and "SKU-020" not in html
    assert "60" in admin.get(base).text and "page 1 of 2" in admin.get(base).text
    assert "No items match" in admin.get(base + "?q=%25").text          # a LIKE wildcard is taken literally
    r = admin.post(base + "/availability", data={"csrf": admin.csrf, "item": "SKU-005", "available": "0",
                                                 "q": "SKU-005"})
    assert r.status_code == 303 and "q=SKU-005" in r.headers["location"]
    assert not svc.catalog.snapshot(shop.site_id).get("SKU-005").available
    assert 'aria-pressed="false"' in admin.get(base + "?q=SKU-005").text
    r = admin.post(base + "/availability", data={"csrf": admin.csrf, "item": "nope", "available": "1"})
    assert r.status_code == 404


def test_uploads_are_copied_under_the_data_folder_and_removed_after_the_import(admin, shop, admin_settings):
    uploads = admin_settings.data_dir / "uploads"
    assert _import(admin, shop, "items.csv", CSV).status_code == 200
    assert _import(admin, shop, "broken.csv", "\x00\xff not a csv").status_code in (200, 400)
    assert uploads.is_dir() and list(uploads.iterdir()) == []


def test_copies_left_by_a_killed_import_are_removed_at_start_up_but_not_one_in_use(admin_settings, shop):
    """kill -9 during an import leaves its copy in the uploads folder; the next start removes it, but leaves a copy
    that a live import (another worker process) still holds locked."""
    uploads = admin_settings.data_dir / "uploads"
    uploads.mkdir(parents=True)
    left, in_use = uploads / "import-left.csv", uploads / "import-in-use.csv"
    for path in (left, in_use):
        path.write_text(CSV)
        os.utime(path, (time.time() - 60, time.time() - 60))
    with open(in_use, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with TestClient(create_app(admin_settings)):
            assert not left.exists() and in_use.exists()


def test_the_listing_shows_the_features_each_item_produces(admin, shop, engine):
    lines = "\n".join(json.dumps(r) for r in [
        {"id": "F-1", "title": "Trail Runner", "category": "Shoes > Running", "price": 80,
         "attributes": {"brand": "Acme", "weight": 300}},
        {"id": "F-2", "title": "Cap", "price": 5}])
    assert _import(admin, shop, "f.jsonl", lines, fmt="jsonl").status_code == 200
    html = admin.get(f"/admin/sites/{shop.site_id}/catalog").text
    for token in ("cat:shoes", "cat:shoes&gt;running", "attr:brand=acme", "attr:weight#8", "title:trail",
                  "title:runner", "price:9", "price:0", "title:cap"):
        assert f"<code>{token}</code>" in html, token
