import multiprocessing

from sqlalchemy import select

from backend.access.login_throttle import LoginThrottle
from backend.store.db import make_engine
from backend.store.tables import AdminLoginFailure

T0 = 1_800_000_000_000
MIN = 60_000


def test_a_client_is_refused_after_its_limit_until_the_oldest_failure_ages_out(engine):
    throttle = LoginThrottle(engine, "secret", window_ms=15 * MIN, per_client=3, global_limit=100)
    for k in range(3):
        assert throttle.attempt("10.0.0.1", now=T0 + k * MIN).allowed        # counted: a failure until success
    verdict = throttle.attempt("10.0.0.1", now=T0 + 3 * MIN)
    assert not verdict.allowed and verdict.scope == "client"
    assert verdict.retry_after_s == 12 * 60                  # the first failure leaves the window at T0 + 15 min
    assert "from your address" in verdict.message and "12 minutes" in verdict.message
    assert throttle.attempt("10.0.0.2", now=T0 + 3 * MIN).allowed        # other clients are not affected
    assert not throttle.attempt("10.0.0.1", now=T0 + 14 * MIN).allowed   # refused attempts do not count
    assert throttle.attempt("10.0.0.1", now=T0 + 15 * MIN).allowed


def test_everybody_is_refused_past_the_global_limit(engine):
    throttle = LoginThrottle(engine, "secret", window_ms=15 * MIN, per_client=100, global_limit=4)
    for k in range(4):
        assert throttle.attempt(f"10.0.1.{k}", now=T0 + k * 1000).allowed
    verdict = throttle.attempt("192.168.0.9", now=T0 + 5000)
    assert not verdict.allowed and verdict.scope == "global" and "paused" in verdict.message
    assert verdict.retry_after_s == 15 * 60 - 5
    assert throttle.attempt("192.168.0.9", now=T0 + 15 * MIN + 1).allowed


def test_success_clears_the_clients_failures(engine):
    throttle = LoginThrottle(engine, "secret", per_client=2)
    assert throttle.attempt("10.0.0.1").allowed and throttle.attempt("10.0.0.1").allowed
    assert not throttle.attempt("10.0.0.1").allowed
    throttle.succeeded("10.0.0.1")
    assert throttle.attempt("10.0.0.1").allowed


def test_addresses_are_stored_as_keyed_hashes_and_old_failures_are_deleted(engine):
    a, b = LoginThrottle(engine, "secret-a"), LoginThrottle(engine, "secret-b")
    assert a.client_key("10.0.0.1") != b.client_key("10.0.0.1")
    a.attempt("10.0.0.1", now=T0)
    a.attempt("10.0.0.1", now=T0 + a.window_ms + 1)       # deletes the first one, now out of the window
    with engine.connect() as conn:
        rows = conn.execute(select(AdminLoginFailure.client, AdminLoginFailure.at_ms)).all()
    assert [r.at_ms for r in rows] == [T0 + a.window_ms + 1]
    assert all("10.0.0.1" not in r.client for r in rows)


def test_concurrent_attempts_in_several_processes_never_check_more_than_the_limit(db_url):
    """Attempts from 4 processes at once, 10 each, for one client: at most the limit are allowed (the attempt is
    counted before the limit is checked, so racing attempts see each other)."""
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        allowed = sum(pool.starmap(_attempts, [(db_url, 10)] * 4))
    assert 1 <= allowed <= 5


def _attempts(db_url: str, n: int) -> int:
    engine = make_engine(db_url)
    throttle = LoginThrottle(engine, "secret", per_client=5, global_limit=1000)
    allowed = sum(throttle.attempt("10.0.0.1").allowed for _ in range(n))
    engine.dispose()
    return allowed
