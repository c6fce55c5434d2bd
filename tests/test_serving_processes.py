"""Serving across processes: `upnext serve --workers 2` gives a session the same answers whichever worker serves
it, and a server killed with -9 answers the same request the same way after a restart (both thanks to
`history`: a worker whose memory lacks the session's state, or holds a stale one, rebuilds it)."""
import json

import httpx
import pytest

from backend.publishing import publish_artifact
from backend.serving.engine import GRU4RecEngine
from backend.simulation.server import ServerProcess
from backend.store.db import make_engine
from backend.store.items import clean_item, upsert_items
from backend.store.sites import create_site
from tests.kernels.random_model import save_random_gru4rec

N = 300
ORIGIN = "http://127.0.0.1"


@pytest.fixture
def published(sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    keys = create_site(engine, "shop", [ORIGIN])
    with engine.begin() as conn:
        upsert_items(conn, keys.site_id, [clean_item({"id": f"item-{i}", "title": f"Item {i}"}) for i in range(N)])
    path = save_random_gru4rec(tmp_path / "model", N, [24], seed=11)
    publish_artifact(engine, keys.site_id, path, model_dir=tmp_path / "models")
    engine.dispose()
    return sqlite_url, keys, GRU4RecEngine.load(path)


def expected(model: GRU4RecEngine, history: list[str], n: int) -> list[str]:
    known = model.indices(history)
    items, _ = model.top_k(model.state_from_history(known), n, known)
    return [model.item_ids[i] for i in items]


def ask(url, keys, session, history, n=6):
    # a new connection per request, so the kernel spreads them over the workers
    with httpx.Client(base_url=url, headers={"Connection": "close"}) as c:
        r = c.get("/v1/recommendations", params={"key": keys.publishable_key, "placement": "product-page",
                                                  "session": session, "history": ",".join(history), "n": n})
    assert r.status_code == 200, r.text
    return [it["id"] for it in r.json()["items"]]


def view(url, keys, session, item):
    r = httpx.post(url + "/v1/events", headers={"Connection": "close"},
                   content=json.dumps({"key": keys.publishable_key, "session": session,
                                       "events": [{"type": "view", "item": item}]}))
    assert r.status_code == 202


@pytest.mark.slow
def test_two_workers_give_a_session_the_same_answers(published, tmp_path):
    url, keys, model = published
    with ServerProcess(url, workers=2, log_path=tmp_path / "server.log") as server:
        pids = set()
        for s in range(3):
            session = f"session-{s:02d}-aaaaaaaaaaaaaaaa"
            history: list[str] = []
            for step in range(8):
                history.append(f"item-{(s * 37 + step * 11) % N}")
                view(server.url, keys, session, history[-1])        # one worker advances its state...
                for _ in range(2):                                   # ...any worker answers the same
                    assert ask(server.url, keys, session, history) == expected(model, history, 6)
                    pids.add(httpx.get(server.url + "/healthz", headers={"Connection": "close"}).json()["process"])
        assert len(pids) == 2, "the requests never reached the second worker"


@pytest.mark.slow
def test_after_kill_9_and_restart_the_same_request_gets_the_same_list(published, tmp_path):
    url, keys, _ = published
    history = ["item-3", "item-50", "item-7"]
    server = ServerProcess(url, log_path=tmp_path / "server.log").start()
    before = ask(server.url, keys, "session-restart-aaaaaaaaaaa", history)
    server.kill()
    with ServerProcess(url, port=server.port, log_path=tmp_path / "server2.log") as again:
        assert ask(again.url, keys, "session-restart-aaaaaaaaaaa", history) == before
