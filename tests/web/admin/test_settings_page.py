"""The settings page: overrides applied to the running server, refused values, the password."""
from starlette.testclient import TestClient

from backend.access.credentials import finish_setup
from backend.access.login_throttle import PER_CLIENT
from backend.app import create_app
from backend.settings import Settings
from backend.store.admin_sessions import load_session
from backend.store.app_settings import load_overrides
from backend.store.db import make_engine
from tests.web.admin.conftest import PASSWORD, another_browser, form_token, log_in


def test_overrides_are_stored_and_applied_at_once(admin, svc, engine):
    r = admin.post("/admin/settings", data={"csrf": admin.csrf, "retention_days": "14", "state_mb": "32"})
    assert r.status_code == 303
    assert load_overrides(engine) == {"retention_days": 14, "state_mb": 32}
    assert (svc.settings.retention_days, svc.settings.state_mb) == (14, 32)
    assert svc.models.state_budget_bytes == 32 << 20
    html = admin.get("/admin/settings").text
    assert 'value="14"' in html and "in use now: 14" in html
    r = admin.post("/admin/settings", data={"csrf": admin.csrf, "retention_days": "", "state_mb": "32"})
    assert r.status_code == 303 and svc.settings.retention_days == 90          # back to the default


def test_bad_values_are_refused_and_nothing_changes(admin, svc, engine):
    r = admin.post("/admin/settings", data={"csrf": admin.csrf, "retention_days": "0", "state_mb": "lots"})
    assert r.status_code == 400
    assert "must be between 1 and 36500" in r.text and "must be an integer" in r.text
    assert load_overrides(engine) == {} and svc.settings.retention_days == 90


def test_database_passwords_are_not_shown(admin, svc):
    assert "UPNEXT_DATABASE_URL" in admin.get("/admin/settings").text
    assert PASSWORD not in admin.get("/admin/settings").text


def test_an_environment_password_cannot_be_changed_here(admin):
    html = admin.get("/admin/settings").text
    assert "set by <code>UPNEXT_ADMIN_PASSWORD</code>" in html
    r = admin.post("/admin/settings/password", data={"csrf": admin.csrf, "current": PASSWORD,
                                                     "password": "x" * 12, "password_again": "x" * 12})
    assert r.status_code == 400 and "change it there" in r.text


def test_a_stored_password_is_changed_and_other_browsers_are_logged_out(db_url, tmp_path, shop):
    settings = Settings.from_env({}, database_url=db_url, data_dir=str(tmp_path / "var"))
    engine = make_engine(db_url)
    finish_setup(engine, settings, "the first password")
    with TestClient(create_app(settings), follow_redirects=False) as me, another_browser(me.app) as other:
        assert log_in(me, "the first password").status_code == 303
        assert log_in(other, "the first password").status_code == 303
        csrf = form_token(me.get("/admin/settings").text)
        form = {"csrf": csrf, "current": "the first password", "password": "the second password",
                "password_again": "the second password"}
        r = me.post("/admin/settings/password", data={**form, "current": "wrong"})
        assert r.status_code == 400 and "current password is wrong" in r.text
        r = me.post("/admin/settings/password", data={**form, "password_again": "other"})
        assert r.status_code == 400 and "differ" in r.text
        r = me.post("/admin/settings/password", data=form)
        assert r.status_code == 303 and "upnext_admin=" in r.headers["set-cookie"]
        assert me.get("/admin/settings").status_code == 200                 # this browser stays logged in
        assert other.get("/admin/settings").status_code == 303              # the other one is out
        assert load_session(engine, other.cookies.get("upnext_admin")) is None
        other.cookies.clear()
        assert log_in(other, "the first password").status_code == 401
        assert log_in(other, "the second password").status_code == 303
        form.update(current="the second password", csrf=form_token(me.get("/admin/settings").text))
        for _ in range(PER_CLIENT):                  # wrong current passwords are throttled like logins
            me.post("/admin/settings/password", data={**form, "current": "guess"})
        r = me.post("/admin/settings/password", data=form)
        assert r.status_code == 400 and "Too many failed logins" in r.text
    engine.dispose()
