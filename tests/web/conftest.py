import pytest
from starlette.testclient import TestClient

from backend.app import create_app
from backend.store.sites import create_site

ORIGIN = "https://shop.example"


@pytest.fixture
def site(engine):
    return create_site(engine, "shop", [ORIGIN])


@pytest.fixture
def client(settings, site):
    with TestClient(create_app(settings), base_url="http://testserver") as c:
        yield c


def batch(site, events, session="sessionsessionsession01"):
    return {"key": site.publishable_key, "session": session, "events": events}
