"""Access to the admin pages: login, the session cookie, CSRF, throttling, first-visit setup, logout."""
import re
import time

import pytest
from starlette.testclient import TestClient

from backend.access.credentials import SETUP_CODE_FILE
from backend.access.login_throttle import PER_CLIENT
from backend.app import create_app
from backend.settings import Settings
from backend.store.admin_credentials import load_credentials
from backend.store.placements import list_placements
from backend.web.admin.csrf import sign_form_token
from tests.web.admin.conftest import PASSWORD, another_browser, form_token, log_in

PAGES = ["/admin/", "/admin/sites", "/admin/settings", "/admin/sites/{id}/", "/admin/sites/{id}/placements",
         "/admin/sites/{id}/new-placement", "/admin/sites/{id}/catalog", "/admin/sites/{id}/models",
         "/admin/sites/{id}/simulator"]


def test_every_page_needs_a_login(anonymous, shop):
    for path in PAGES:
        r = anonymous.get(path.format(id=shop.site_id))
        assert r.status_code == 303 and r.headers["location"].startswith("/admin/login?next="), path
    r = anonymous.post(f"/admin/sites/{shop.site_id}/placements", data={"name": "x"})
    assert r.status_code == 403 and "log in again" in r.text


def test_login_sets_the_only_cookie_httponly_strict_and_scoped_to_admin(anonymous, shop):
    r = log_in(anonymous)
    assert r.status_code == 303 and r.headers["location"] == "/admin/"
    cookies = r.headers.get_list("set-cookie")
    assert len(cookies) == 1
    cookie = cookies[0].lower()
    assert cookie.startswith("upnext_admin=") and "httponly" in cookie and "samesite=strict" in cookie
    assert "path=/admin" in cookie and "secure" not in cookie          # plain http here
    assert anonymous.get("/admin/").headers["location"] == f"/admin/sites/{shop.site_id}/"
    for path in PAGES:
        assert anonymous.get(path.format(id=shop.site_id)).status_code in (200, 303), path


def test_the_cookie_is_secure_behind_https(anonymous):
    token = form_token(anonymous.get("/admin/login").text)
    r = anonymous.post("/admin/login", data={"csrf": token, "password": PASSWORD},
                       headers={"X-Forwarded-Proto": "https"})
    assert "secure" in r.headers["set-cookie"].lower()


def test_a_wrong_password_is_refused(anonymous):
    r = log_in(anonymous, "not the password")
    assert r.status_code == 401 and "Wrong password." in r.text and "set-cookie" not in r.headers
    assert anonymous.get("/admin/").status_code == 303


def test_the_next_page_must_be_an_admin_page(anonymous):
    token = form_token(anonymous.get("/admin/login").text)
    for target, expected in (("//evil.example/admin/", "/admin/"), ("https://evil.example/", "/admin/"),
                             ("/\\evil.example/admin/", "/admin/"), ("/\t/evil.example/admin/", "/admin/"),
                             ("/admin/\r\nx", "/admin/"), ("/admin/ x", "/admin/"),
                             ("/admin/settings", "/admin/settings")):
        anonymous.cookies.clear()
        r = anonymous.post("/admin/login", data={"csrf": token, "password": PASSWORD, "next": target})
        assert r.headers["location"] == expected


@pytest.mark.parametrize("token", [None, "", "123.abc", "garbage"])
def test_the_login_form_needs_its_signed_token(anonymous, token):
    data = {"password": PASSWORD} | ({"csrf": token} if token is not None else {})
    r = anonymous.post("/admin/login", data=data)
    assert r.status_code == 403 and "CSRF" in r.text and "set-cookie" not in r.headers


def test_an_old_login_form_is_refused(anonymous, svc):
    secret = load_credentials(svc.engine).secret
    old = sign_form_token(secret, "login", now=time.time() - 5 * 3600)
    assert anonymous.post("/admin/login", data={"csrf": old, "password": PASSWORD}).status_code == 403
    fresh = sign_form_token(secret, "login")
    assert anonymous.post("/admin/login", data={"csrf": fresh, "password": PASSWORD}).status_code == 303
    setup_token = sign_form_token(secret, "setup")       # a token made for another form
    anonymous.cookies.clear()
    assert anonymous.post("/admin/login", data={"csrf": setup_token, "password": PASSWORD}).status_code == 403


def test_state_changes_without_the_sessions_csrf_token_are_refused(admin, shop, engine):
    url = f"/admin/sites/{shop.site_id}/placements"
    form = {"name": "csrf-test", "page_kind": "product", "algorithm": "popular", "n": "4", "fallback": "popular"}
    for data, headers in (({**form}, {}), ({**form, "csrf": "forged"}, {}),
                          ({**form, "csrf": admin.csrf}, {"Origin": "https://evil.example"}),
                          ({**form, "csrf": admin.csrf}, {"Referer": "https://evil.example/page"})):
        r = admin.post(url, data=data, headers=headers)
        assert r.status_code == 403 and "CSRF" in r.text
    assert list_placements(engine, shop.site_id) == []
    r = admin.post(url, data={**form, "csrf": admin.csrf}, headers={"Origin": "http://testserver"})
    assert r.status_code == 303
    assert [p.name for p in list_placements(engine, shop.site_id)] == ["csrf-test"]


def test_another_sessions_csrf_token_does_not_work(admin, shop, admin_settings):
    with another_browser(admin.app) as other:
        log_in(other)
        other_token = form_token(other.get("/admin/settings").text)
    assert other_token != admin.csrf
    r = admin.post("/admin/settings", data={"csrf": other_token, "retention_days": "5"})
    assert r.status_code == 403


def test_logins_are_throttled_per_client_with_a_clear_message(anonymous):
    for _ in range(PER_CLIENT):
        assert log_in(anonymous, "wrong password").status_code == 401
    r = log_in(anonymous)                                   # even the right password waits
    assert r.status_code == 429 and "Too many failed logins from your address" in r.text
    assert int(r.headers["retry-after"]) > 0 and "set-cookie" not in r.headers
    with another_browser(anonymous.app, client=("203.0.113.9", 4000)) as elsewhere:
        assert log_in(elsewhere).status_code == 303


def test_logout_ends_the_session(admin):
    token = admin.cookies.get("upnext_admin")
    r = admin.post("/admin/logout", data={"csrf": admin.csrf})
    assert r.status_code == 303 and r.headers["location"] == "/admin/login?notice=logged-out"
    assert 'upnext_admin=""' in r.headers["set-cookie"] or "max-age=0" in r.headers["set-cookie"].lower()
    admin.cookies.set("upnext_admin", token, path="/admin")          # a copy of the old cookie is useless
    assert admin.get("/admin/").status_code == 303
    assert "You are logged out." in admin.get("/admin/login?notice=logged-out").text


def test_first_visit_sets_the_password_with_the_setup_code(db_url, tmp_path, shop):
    settings = Settings.from_env({}, database_url=db_url, data_dir=str(tmp_path / "var"))
    with TestClient(create_app(settings), follow_redirects=False) as c:
        assert c.get("/admin/login").headers["location"] == "/admin/setup"
        page = c.get("/admin/setup")
        assert page.status_code == 200 and SETUP_CODE_FILE in page.text
        assert str(tmp_path) not in page.text          # anonymous visitors do not learn where the data folder is
        code = (tmp_path / "var" / SETUP_CODE_FILE).read_text().strip()
        token = form_token(page.text)
        form = {"csrf": token, "code": code, "password": "my new admin password",
                "password_again": "my new admin password"}
        r = c.post("/admin/setup", data={**form, "code": "wrong"})
        assert r.status_code == 401 and "not the setup code" in r.text
        r = c.post("/admin/setup", data={**form, "password_again": "different"})
        assert r.status_code == 400 and "differ" in r.text
        r = c.post("/admin/setup", data={**form, "password": "short", "password_again": "short"})
        assert r.status_code == 400 and "at least 10" in r.text
        r = c.post("/admin/setup", data=form)
        assert r.status_code == 303 and "upnext_admin=" in r.headers["set-cookie"]
        assert c.get("/admin/sites").status_code == 200
        assert not (tmp_path / "var" / SETUP_CODE_FILE).exists()
        assert c.get("/admin/setup").headers["location"] == "/admin/login"      # once only
        c.cookies.clear()
        assert log_in(c, "my new admin password").status_code == 303


def test_setup_is_closed_when_the_environment_sets_the_password(anonymous):
    assert anonymous.get("/admin/setup").headers["location"] == "/admin/login"


def test_pages_carry_a_strict_policy_and_no_inline_script_or_style(admin, shop):
    admin.post(f"/admin/sites/{shop.site_id}/placements", data={
        "csrf": admin.csrf, "name": "next", "page_kind": "product", "algorithm": "popular", "n": "4",
        "fallback": "popular"})
    pages = [p.format(id=shop.site_id) for p in PAGES[1:]] + [f"/admin/sites/{shop.site_id}/placements/next",
                                                              "/admin/login"]
    for path in pages:
        r = admin.get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe" not in csp
        assert "frame-ancestors 'none'" in csp and r.headers["x-frame-options"] == "DENY"
        assert r.headers["cache-control"] == "no-store"
        html = r.text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert "<style" not in html and not re.search(r"\sstyle=", html), path
        assert not re.search(r"\son[a-z]+=", html), path
    preview = admin.get(f"/admin/sites/{shop.site_id}/placements/next/preview")
    assert "frame-ancestors 'self'" in preview.headers["content-security-policy"]
    assert preview.headers["x-frame-options"] == "SAMEORIGIN"


@pytest.mark.slow
def test_concurrent_wrong_passwords_cannot_race_past_the_limit_nor_stall_other_requests(sqlite_url, tmp_path):
    """40 wrong passwords at once, over two worker processes, against a stored (scrypt) password: at most the
    per-client limit of them are checked (401), the others are refused unchecked (429); a /healthz sent during the
    burst is answered."""
    import asyncio

    import httpx

    from backend.access.credentials import set_password
    from backend.simulation.server import ServerProcess
    from backend.store.db import make_engine

    engine = make_engine(sqlite_url)
    set_password(engine, PASSWORD)
    engine.dispose()

    async def burst(url: str):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            token = form_token((await client.get("/admin/login")).text)
            form = {"csrf": token, "password": "wrong password", "next": "/admin/"}
            logins = [asyncio.create_task(client.post("/admin/login", data=form)) for _ in range(40)]
            await asyncio.sleep(0.05)
            started = time.monotonic()
            health = await client.get("/healthz")
            health_s = time.monotonic() - started
            return [r.status_code for r in await asyncio.gather(*logins)], health, health_s

    with ServerProcess(sqlite_url, workers=2, data_dir=tmp_path / "var", log_path=tmp_path / "server.log") as server:
        statuses, health, health_s = asyncio.run(burst(server.url))
    print(f"\n/healthz during the burst answered in {health_s * 1000:.0f} ms; logins: "
          f"{statuses.count(401)} checked, {statuses.count(429)} refused")
    assert health.status_code == 200
    assert set(statuses) <= {401, 429}
    assert 1 <= statuses.count(401) <= PER_CLIENT
