"""Placements: create, edit, refuse bad settings, delete, preview; titles shown escaped."""
from sqlalchemy import select
from starlette.testclient import TestClient

from backend.app import create_app
from backend.store.placements import list_placements
from backend.store.tables import ServedList
from tests.web.admin.conftest import another_browser, log_in

FORM = {"name": "next", "page_kind": "product", "algorithm": "gru4rec_next", "n": "6",
        "title": "<img src=x onerror=alert(1)>", "exclude_seen": "on", "only_available": "on",
        "fallback": "item_to_item,popular"}


def test_create_edit_and_delete(admin, shop, engine, svc):
    base = f"/admin/sites/{shop.site_id}"
    r = admin.post(base + "/placements", data={**FORM, "csrf": admin.csrf, "existing": "0"})
    assert r.status_code == 303 and r.headers["location"].startswith(base + "/placements/next")
    [cfg] = list_placements(engine, shop.site_id)
    assert (cfg.n, cfg.exclude_seen, cfg.same_category, cfg.fallback) == (6, True, False, ("item_to_item", "popular"))
    assert svc.placements.get(shop.site_id, "next").n == 6                    # this process's cache at once

    listing = admin.get(base + "/placements").text
    page = admin.get(base + "/placements/next").text
    for html in (listing, page):
        assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html

    r = admin.post(base + "/placements", data={**FORM, "csrf": admin.csrf, "existing": "1", "n": "12",
                                               "algorithm": "popular", "same_category": "on", "fallback": ""})
    assert r.status_code == 303
    [cfg] = list_placements(engine, shop.site_id)
    assert (cfg.n, cfg.algorithm, cfg.same_category, cfg.fallback, cfg.exclude_seen) == \
        (12, "popular", True, (), True)

    r = admin.post(base + "/placements/next/delete", data={"csrf": admin.csrf})
    assert r.status_code == 303 and list_placements(engine, shop.site_id) == []
    assert admin.get(base + "/placements/next").status_code == 404


def test_bad_settings_are_refused_with_a_message(admin, shop, engine):
    url = f"/admin/sites/{shop.site_id}/placements"
    for change, message in (({"name": "Bad Name"}, "name: 1-64 lowercase"), ({"n": "0"}, "between 1 and 50"),
                            ({"n": "many"}, "whole number"), ({"algorithm": "magic"}, "algorithm: must be one of"),
                            ({"fallback": "popular,popular"}, "fallback"), ({"page_kind": "x"}, "page kind")):
        r = admin.post(url, data={**FORM, **change, "csrf": admin.csrf})
        assert r.status_code == 400 and message in r.text, change
    assert list_placements(engine, shop.site_id) == []
    admin.post(url, data={**FORM, "csrf": admin.csrf})
    r = admin.post(url, data={**FORM, "csrf": admin.csrf, "existing": "0"})
    assert r.status_code == 400 and "exists already" in r.text


def test_the_preview_embeds_the_widget_with_the_sites_key(admin, shop):
    admin.post(f"/admin/sites/{shop.site_id}/placements", data={**FORM, "csrf": admin.csrf})
    r = admin.get(f"/admin/sites/{shop.site_id}/placements/next/preview?item=SKU-1&n=3&title=Hi%20%3Cb%3E")
    html = r.text
    assert r.status_code == 200
    assert html.index('src="/admin/static/preview.js"') < html.index('src="/w.js"')     # GPC before the widget
    assert f'data-key="{shop.publishable_key}"' in html
    assert 'data-upnext="next" data-item="SKU-1" data-n="3" data-title="Hi &lt;b&gt;"' in html
    assert 'data-n="6"' in admin.get(f"/admin/sites/{shop.site_id}/placements/next/preview?n=99").text


def test_the_preview_asks_an_endpoint_that_records_nothing(admin_settings, shop, engine):
    """The preview's widget asks /admin/sites/N/preview-api (its data-api): the same answers as /v1/recommendations,
    with the site's publishable key, never recorded as served lists: previews are not traffic."""
    base = f"/admin/sites/{shop.site_id}"
    with TestClient(create_app(admin_settings), base_url="http://testserver", follow_redirects=False) as client:
        assert log_in(client).status_code == 303
        assert f'data-api="{base}/preview-api"' in client.get(f"{base}/placements/next/preview").text
        url = f"{base}/preview-api/v1/recommendations"
        with another_browser(client.app) as widget:     # the widget sends no cookie
            previewed = widget.get(url, params={"key": shop.publishable_key, "placement": "next", "n": 3})
            assert previewed.status_code == 200 and previewed.json()["placement"] == "next"
            assert previewed.headers["cache-control"] == "no-store"
            bad = widget.get(url, params={"key": shop.publishable_key, "placement": "Bad Name"})
            assert bad.status_code == 400 and bad.json()["problems"][0]["field"] == "placement"
            assert widget.get(url, params={"key": "pk_nope", "placement": "next"}).status_code == 401
            other = f"/admin/sites/{shop.site_id + 7}/preview-api/v1/recommendations"
            assert widget.get(other, params={"key": shop.publishable_key, "placement": "next"}).status_code == 401
        public = client.get("/v1/recommendations", params={"key": shop.publishable_key, "placement": "next"})
        assert public.status_code == 200
    with engine.connect() as conn:                  # the served lists are written by the time the app has stopped
        recorded = set(conn.execute(select(ServedList.rec)).scalars())
    assert public.json()["rec"] in recorded and previewed.json()["rec"] not in recorded


def test_unknown_sites_are_not_found(admin, shop):
    assert admin.get(f"/admin/sites/{shop.site_id + 7}/placements").status_code == 404


CONTROLS = {"diversity": "0.3", "max_per_category": "2", "pinned": "SKU-9 @ 2\n", "blocked": "SKU-1\nSKU-2",
            "rules": "category not in gifts\r\nprice between 0.5x and 2x\nattribute color = red"}


def test_the_form_edits_the_merchandising_controls(admin, shop, engine):
    base = f"/admin/sites/{shop.site_id}"
    r = admin.post(base + "/placements", data={**FORM, **CONTROLS, "csrf": admin.csrf, "existing": "0"})
    assert r.status_code == 303
    [cfg] = list_placements(engine, shop.site_id)
    assert (cfg.diversity, cfg.max_per_category, cfg.pinned, cfg.blocked) == (0.3, 2, (("SKU-9", 2),),
                                                                               ("SKU-1", "SKU-2"))
    assert [r.text() for r in cfg.rules] == ["category not in gifts", "price between 0.5x and 2x",
                                             "attribute color = red"]
    html = admin.get(base + "/placements/next").text
    assert "SKU-9 @ 2</textarea>" in html and "price between 0.5x and 2x" in html and 'value="0.3"' in html


def test_bad_controls_are_all_named_and_the_typed_text_is_kept(admin, shop, engine):
    url = f"/admin/sites/{shop.site_id}/placements"
    r = admin.post(url, data={**FORM, "csrf": admin.csrf, "diversity": "2", "max_per_category": "x",
                              "pinned": "SKU-9", "rules": "price from 1 to 2\ncategory in shoes"})
    assert r.status_code == 400
    for message in ("diversity: a number from 0", "at most per category: empty (no cap)",
                    "pinned items: &#39;SKU-9&#39;: write one item per line as ITEM @ POSITION",
                    "rules: &#39;price from 1 to 2&#39;: not a rule; write one of"):
        assert message in r.text, message
    assert "price from 1 to 2\ncategory in shoes</textarea>" in r.text
    assert list_placements(engine, shop.site_id) == []


def test_the_preview_lists_what_the_controls_did(admin, shop, engine, svc):
    from backend.store.items import clean_item, upsert_items
    with engine.begin() as conn:
        upsert_items(conn, shop.site_id, [clean_item({"id": f"SKU-{i}", "title": f"Item {i}", "price": 10 + i})
                                          for i in range(12)])
    svc.catalog.refresh()
    base = f"/admin/sites/{shop.site_id}"
    admin.post(base + "/placements", data={**FORM, "csrf": admin.csrf, "algorithm": "popular", "n": "4",
                                           "blocked": "SKU-4", "rules": "price <= 1.0x", "pinned": "SKU-0 @ 1"})
    html = admin.get(base + "/placements/next?item=SKU-5").text      # price 15: at most 15 (the content answer holds its neighbours by price)
    table = html.split("data-preview-steps")[1].split("</table>")[0]
    assert '<td><code>SKU-4</code> Item 4</td><td>removed</td><td>blocked</td>' in table
    assert "<td>removed</td><td>rule 1: price &lt;= 1x</td>" in table
    pinned = table.split('<tr data-step="pinned">')[1].split("</tr>")[0]
    assert pinned.startswith("<td><code>SKU-0</code> Item 0</td><td>pinned</td><td>pinned</td>")
    assert pinned.endswith(" → 1</td>")


def test_the_blend_is_offered_and_stored(admin, shop, engine):
    base = f"/admin/sites/{shop.site_id}"
    assert 'value="gru4rec_blend"' in admin.get(base + "/new-placement").text
    r = admin.post(base + "/placements", data={**FORM, "algorithm": "gru4rec_blend", "csrf": admin.csrf,
                                               "existing": "0"})
    assert r.status_code == 303
    assert [c.algorithm for c in list_placements(engine, shop.site_id)] == ["gru4rec_blend"]
