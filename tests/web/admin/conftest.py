"""An app with an admin password from the environment, a site, and clients logged in or not."""
import contextlib
import re

import pytest
from starlette.testclient import TestClient

from backend.app import create_app
from backend.settings import Settings
from backend.store.sites import create_site

PASSWORD = "correct horse battery staple"


@pytest.fixture
def admin_settings(db_url, tmp_path) -> Settings:
    return Settings.from_env({}, database_url=db_url, data_dir=str(tmp_path / "var"), admin_password=PASSWORD,
                             purge_interval_s="3600")


@pytest.fixture
def shop(engine):
    return create_site(engine, "shop", ["https://shop.example"])


@pytest.fixture
def anonymous(admin_settings, shop):
    with TestClient(create_app(admin_settings), base_url="http://testserver", follow_redirects=False) as c:
        yield c


def form_token(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def log_in(client, password: str = PASSWORD):
    token = form_token(client.get("/admin/login").text)
    return client.post("/admin/login", data={"csrf": token, "password": password, "next": "/admin/"})


@pytest.fixture
def admin(anonymous):
    """A logged-in client; ``admin.csrf`` is its session's CSRF token."""
    r = log_in(anonymous)
    assert r.status_code == 303, r.text
    anonymous.csrf = form_token(anonymous.get("/admin/settings").text)
    return anonymous


@pytest.fixture
def svc(anonymous):
    return anonymous.app.state.services


@contextlib.contextmanager
def another_browser(app, **kw):
    """Another client of the same running app (its lifespan is not started again), closed afterwards."""
    client = TestClient(app, base_url="http://testserver", follow_redirects=False, **kw)
    try:
        yield client
    finally:
        client.close()
