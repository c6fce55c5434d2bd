import pytest
from starlette.testclient import TestClient

from backend.app import create_app

ORIGIN = "https://shop.example"


@pytest.fixture
def client(settings, site):
    with TestClient(create_app(settings), base_url="http://testserver") as c:
        yield c


def batch(site, events, session="sessionsessionsession01"):
    return {"key": site.publishable_key, "session": session, "events": events}
