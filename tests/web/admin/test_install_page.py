"""The install check page: red for a fresh site, the refused origin named once a page of it was refused, the
origins of the script, events and recommendations recorded, and the JSON the page polls."""
from backend.store.origins import seen_origins
from tests.web.admin.conftest import another_browser


def test_a_fresh_site_is_red_and_a_refused_origin_is_named(admin, shop, svc):
    page = admin.get(f"/admin/sites/{shop.site_id}/install")
    assert page.status_code == 200 and 'id="install-status">red<' in page.text
    assert "Content-Security-Policy" in page.headers
    r = admin.post("/v1/events", headers={"Origin": "https://www.shop.example"},
                   json={"key": shop.publishable_key, "session": "s" * 22, "events": [{"type": "view", "item": "A"}]})
    assert r.status_code == 403
    r = admin.get(f"/v1/recommendations?key={shop.publishable_key}&placement=home",
                  headers={"Origin": "https://shop.example"})
    assert r.status_code == 200
    admin.get("/w.js", headers={"Referer": "https://shop.example/p/1"})
    admin.get("/w.js", headers={"Referer": "https://elsewhere.example/"})     # no site lists it: not counted
    svc.origins.flush(svc.engine)
    assert {(o.kind, o.origin) for o in seen_origins(svc.engine, shop.site_id)} == {
        ("refused", "https://www.shop.example"), ("recommendations", "https://shop.example"),
        ("script", "https://shop.example")}
    text = admin.get(f"/admin/sites/{shop.site_id}/install").text
    assert "https://www.shop.example" in text and "add it on Sites and keys" in text
    data = admin.get(f"/admin/sites/{shop.site_id}/install.json").json()
    assert data["status"] == "red"
    assert [c["key"] for c in data["checks"]] == ["snippet", "views", "recs", "catalogue", "origins", "model"]


def test_the_page_needs_a_login_and_an_existing_site(admin, shop):
    with another_browser(admin.app) as stranger:
        assert stranger.get(f"/admin/sites/{shop.site_id}/install.json").status_code in (303, 401, 403)
    assert admin.get("/admin/sites/999/install").status_code == 404
