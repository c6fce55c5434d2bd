"""Sites and keys: origins, key rotation (the secret shown once), snippets per placement."""
from backend.store.placements import PlacementConfig, save_placement
from backend.store.sites import list_sites


def test_the_page_lists_keys_origins_and_a_snippet_per_placement(admin, shop, engine):
    save_placement(engine, shop.site_id, PlacementConfig("product-page", title="You may also like"))
    html = admin.get("/admin/sites").text
    assert shop.publishable_key in html and "https://shop.example" in html
    assert f'&lt;script async src="http://testserver/w.js" data-key="{shop.publishable_key}"&gt;' in html
    assert '&lt;div data-upnext="product-page"&gt;&lt;/div&gt;' in html
    assert shop.secret_key not in html


def test_origins_are_normalised_and_bad_ones_refused(admin, shop, engine, svc):
    url = f"/admin/sites/{shop.site_id}/origins"
    r = admin.post(url, data={"csrf": admin.csrf, "origins": "https://Shop.example:443/\nhttp://localhost:3000"})
    assert r.status_code == 303
    assert list_sites(engine)[0]["allowed_origins"] == ["http://localhost:3000", "https://shop.example"]
    assert svc.sites.by_publishable_key(shop.publishable_key).allows_origin("http://localhost:3000")
    r = admin.post(url, data={"csrf": admin.csrf, "origins": "javascript:alert(1)"})
    assert r.status_code == 400 and "origin must look like" in r.text
    assert list_sites(engine)[0]["allowed_origins"] == ["http://localhost:3000", "https://shop.example"]


def test_rotation_shows_the_new_secret_once_and_old_keys_stop_working(admin, shop, svc):
    r = admin.post(f"/admin/sites/{shop.site_id}/rotate", data={"csrf": admin.csrf})
    assert r.status_code == 200 and "shown only this once" in r.text
    new_pk = list_sites(svc.engine)[0]["publishable_key"]
    assert new_pk != shop.publishable_key and new_pk in r.text
    secret = r.text.split('id="new-sk">')[1].split("<")[0]
    assert secret.startswith("sk_live_") and svc.sites.by_secret_key(secret).id == shop.site_id
    assert svc.sites.by_publishable_key(shop.publishable_key) is None
    assert secret not in admin.get("/admin/sites").text


def test_a_new_site_gets_keys(admin, engine):
    r = admin.post("/admin/sites", data={"csrf": admin.csrf, "name": "video", "origins": "https://video.example"})
    assert r.status_code == 200 and "sk_live_" in r.text
    assert [s["name"] for s in list_sites(engine)] == ["shop", "video"]
    r = admin.post("/admin/sites", data={"csrf": admin.csrf, "name": "<b>bad</b>", "origins": ""})
    assert r.status_code == 400 and "site name" in r.text and "&lt;b&gt;bad&lt;/b&gt;" in r.text


def test_the_origin_switch_is_saved_with_the_origins(admin, shop, engine, svc):
    url = f"/admin/sites/{shop.site_id}/origins"
    assert 'name="require_origin"' in admin.get("/admin/sites").text
    r = admin.post(url, data={"csrf": admin.csrf, "origins": "https://shop.example", "require_origin": "on"})
    assert r.status_code == 303 and list_sites(engine)[0]["require_origin"] is True
    assert svc.sites.by_publishable_key(shop.publishable_key).require_origin
    assert 'value="on" checked' in admin.get("/admin/sites").text
    r = admin.post(url, data={"csrf": admin.csrf, "origins": "https://shop.example"})    # unticked
    assert r.status_code == 303 and list_sites(engine)[0]["require_origin"] is False
    assert not svc.sites.by_publishable_key(shop.publishable_key).require_origin
    r = admin.post(url, data={"origins": "https://shop.example", "require_origin": "on"})  # no CSRF token
    assert r.status_code == 403 and list_sites(engine)[0]["require_origin"] is False


def test_the_page_shows_the_readmes_snippets_with_the_sites_key(admin, shop):
    """Issue 18: the admin shows the README's integrations (same source) with this server and key filled in."""
    import html as html_lib

    from backend.snippets import README_HOST, README_KEY
    from tests.support.readme import integrating_snippets

    page = admin.get("/admin/sites").text
    for heading, block in integrating_snippets():
        filled = block.replace(README_HOST, "http://testserver").replace(README_KEY, shop.publishable_key)
        assert html_lib.escape(filled, quote=False) in page.replace("&#34;", '"').replace("&#39;", "'"), heading
    assert f"/admin/sites/{shop.site_id}/install" in page
