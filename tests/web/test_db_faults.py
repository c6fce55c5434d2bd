"""Database faults against a real ``upnext serve`` process: PostgreSQL paused (SIGSTOP), stopped, read-only, and a
SQLite file locked by another writer. Requests must keep being answered: recommendations from memory, events with
a clean 503 (CORS, Retry-After), /healthz with ok/error only. Timeouts are set short through the settings, and
every reply is awaited with a client timeout well under the old behaviour's waits (the hang itself), so a test
fails by the request not being answered, not by a timing assertion."""
from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from backend.simulation.server import ServerProcess
from backend.store.db import make_engine, migrate
from backend.store.sites import create_site

ORIGIN = "https://shop.example"
SESSION = "faultsessionfaultsession01"
# the server gives up on the database after 1 s (UPNEXT_DB_REQUEST_TIMEOUT_S): a reply takes well under REPLY_S
FAULT_ENV = {"UPNEXT_DB_REQUEST_TIMEOUT_S": "1", "UPNEXT_DB_CONNECT_TIMEOUT_S": "2",
             "UPNEXT_DB_STATEMENT_TIMEOUT_S": "3", "UPNEXT_MAX_PENDING_SERVED": "100"}
REPLY_S = 5.0


def _sites(url: str):
    migrate(url)
    engine = make_engine(url)
    try:
        return create_site(engine, "shop", [ORIGIN]), create_site(engine, "other", [])
    finally:
        engine.dispose()


def _events(client, key, *, origin: str | None = ORIGIN):
    body = {"key": key, "session": SESSION, "events": [{"type": "view", "item": "A"}]}
    return client.post("/v1/events", json=body, headers={"Origin": origin} if origin else {})


def _recommend(client, key, *, origin: str | None = ORIGIN):
    return client.get("/v1/recommendations", params={"key": key, "placement": "product", "session": SESSION},
                      headers={"Origin": origin} if origin else {})


def _until(fn, ok, seconds: float = 15.0):
    """fn() until ok(result), for at most ``seconds``; the last result."""
    deadline = time.monotonic() + seconds
    while True:
        result = fn()
        if ok(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def _request_tracebacks(log_path) -> int:
    return log_path.read_text().count("Exception in ASGI application")


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    """A PostgreSQL server of this module's own: the tests pause and stop it."""
    from tests.support.postgres import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pg_serve(pg, tmp_path_factory):
    url = pg.create_database("upnext_faults")
    shop, other = _sites(url)
    log = tmp_path_factory.mktemp("faults") / "server.log"
    with ServerProcess(url, env=FAULT_ENV, log_path=log) as server:
        with httpx.Client(base_url=server.url, timeout=REPLY_S) as client:
            yield client, shop, other, log


@pytest.mark.postgres
def test_a_paused_postgres_freezes_no_request(pg, pg_serve):
    client, shop, other, log = pg_serve
    assert _recommend(client, shop.publishable_key).status_code == 200
    assert _events(client, shop.publishable_key).status_code == 202
    with pg.paused():
        time.sleep(2.5)        # past the directories' refresh period: the old code reloaded them per request
        t0 = time.perf_counter()
        unknown = _recommend(client, "pk_live_unknown")           # used to reload the keys on the event loop
        recs = [r for _ in range(3) for r in (_recommend(client, shop.publishable_key),
                                              _recommend(client, other.publishable_key, origin=None))]
        ev = _events(client, shop.publishable_key)
        health = _until(lambda: client.get("/healthz"), lambda r: r.status_code == 503)
        dropped = client.get("/metrics").text
        print(f"\npaused PostgreSQL: {len(recs) + 3} replies in {time.perf_counter() - t0:.2f} s")
    assert unknown.status_code == 401
    assert [r.status_code for r in recs] == [200] * len(recs) and all(r.json()["items"] is not None for r in recs)
    assert ev.status_code == 503 and ev.headers["retry-after"] and ev.headers["access-control-allow-origin"] == ORIGIN
    assert health.status_code == 503 and health.json() == {"status": "error", "database": "error"}
    # a served list that cannot be queued is dropped and counted, the answer goes out
    assert "upnext_served_lists_dropped_total 0.0" not in dropped
    assert _until(lambda: _events(client, shop.publishable_key), lambda r: r.status_code == 202).status_code == 202
    assert _until(lambda: client.get("/healthz"), lambda r: r.status_code == 200).status_code == 200
    assert _request_tracebacks(log) == 0


@pytest.mark.postgres
def test_a_stopped_postgres_gets_clean_503s_and_recommendations_go_on(pg, pg_serve):
    client, shop, other, log = pg_serve
    assert _events(client, shop.publishable_key).status_code == 202
    pg.halt()
    try:
        time.sleep(1.5)        # past the key directory's reload period: the old code retried it per request
        recs = [_recommend(client, shop.publishable_key) for _ in range(5)]
        browser = [_events(client, shop.publishable_key) for _ in range(5)]
        plain = _events(client, shop.publishable_key, origin=None)
        preflight = client.options("/v1/events", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
        items = client.put("/v1/items", json=[{"id": "A", "title": "A", "url": "/a"}],
                           headers={"Authorization": f"Bearer {shop.secret_key}"})
        health = _until(lambda: client.get("/healthz"), lambda r: r.status_code == 503)
    finally:
        pg.restart()
    assert [r.status_code for r in recs] == [200] * 5
    for r in browser:
        assert r.status_code == 503 and r.headers["retry-after"]
        assert r.headers["access-control-allow-origin"] == ORIGIN
    assert plain.status_code == 503 and plain.headers["retry-after"]
    assert preflight.status_code == 204
    assert items.status_code == 503 and items.headers["retry-after"]
    assert health.status_code == 503 and health.json() == {"status": "error", "database": "error"}
    assert str(pg.port) not in health.text and "127.0.0.1" not in health.text
    assert _request_tracebacks(log) == 0                   # no traceback per request...
    assert log.read_text().count("request: database failed") <= 1     # ...and the fault logged once
    assert _until(lambda: _events(client, shop.publishable_key), lambda r: r.status_code == 202).status_code == 202
    assert _until(lambda: client.get("/healthz"), lambda r: r.status_code == 200).status_code == 200


@pytest.mark.postgres
def test_healthz_fails_when_the_database_reads_but_cannot_write(pg, pg_serve):
    client, _, _, _ = pg_serve
    admin = f"host=127.0.0.1 port={pg.port} user=postgres dbname=postgres"

    def read_only(on: bool):
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("ALTER DATABASE upnext_faults " + ("SET default_transaction_read_only = on" if on else
                                                           "RESET default_transaction_read_only"))
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'upnext_faults'")
    assert client.get("/healthz").status_code == 200
    read_only(True)
    try:
        health = _until(lambda: client.get("/healthz"), lambda r: r.status_code == 503)
    finally:
        read_only(False)
    assert health.status_code == 503 and health.json() == {"status": "error", "database": "error"}
    assert _until(lambda: client.get("/healthz"), lambda r: r.status_code == 200).status_code == 200


def test_a_locked_sqlite_file_gets_503s_soon_and_recommendations_go_on(tmp_path):
    path = tmp_path / "upnext.db"
    shop, _ = _sites(f"sqlite:///{path}")
    with ServerProcess(f"sqlite:///{path}", env=FAULT_ENV, log_path=tmp_path / "server.log") as server, \
            httpx.Client(base_url=server.url, timeout=REPLY_S) as client:
        assert _events(client, shop.publishable_key).status_code == 202
        lock = sqlite3.connect(path, timeout=0, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")            # another writer holds the write lock
        try:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                events = list(pool.map(lambda _: _events(client, shop.publishable_key), range(8)))
            waited = time.perf_counter() - t0
            recs = [_recommend(client, shop.publishable_key) for _ in range(3)]
            health = _until(lambda: client.get("/healthz"), lambda r: r.status_code == 503)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        print(f"\nlocked SQLite: 8 event posts answered in {waited:.2f} s")
        for r in events:
            assert r.status_code == 503 and r.headers["retry-after"]
            assert r.headers["access-control-allow-origin"] == ORIGIN
        assert [r.status_code for r in recs] == [200] * 3
        assert health.status_code == 503 and health.json() == {"status": "error", "database": "error"}
        assert _until(lambda: _events(client, shop.publishable_key), lambda r: r.status_code == 202).status_code == 202
        assert _until(lambda: client.get("/healthz"), lambda r: r.status_code == 200).status_code == 200
