from unittest import mock

from sqlalchemy import select

from backend.store import admin_sessions as sessions
from backend.store.tables import AdminSession


def test_a_session_is_found_by_its_token_and_stores_only_a_hash(engine):
    token, info = sessions.create_session(engine)
    with engine.connect() as conn:
        stored = conn.execute(select(AdminSession.token_hash)).scalars().all()
    assert token not in stored and info.token_hash in stored
    found = sessions.load_session(engine, token)
    assert found.csrf_token == info.csrf_token and len(found.csrf_token) >= 32


def test_unknown_empty_and_oversized_tokens_find_nothing(engine):
    sessions.create_session(engine)
    for token in (None, "", "nope", "x" * 500):
        assert sessions.load_session(engine, token) is None


def test_logout_ends_the_session(engine):
    token, info = sessions.create_session(engine)
    sessions.end_session(engine, info.token_hash)
    assert sessions.load_session(engine, token) is None


def test_idle_sessions_expire_and_use_extends_them_up_to_the_absolute_limit(engine):
    t0 = 1_800_000_000_000
    with mock.patch.object(sessions, "now_ms", return_value=t0):
        token, _ = sessions.create_session(engine)
    later = t0 + sessions.IDLE_MS - 1000
    with mock.patch.object(sessions, "now_ms", return_value=later):
        assert sessions.load_session(engine, token) is not None      # extends the idle deadline
    with mock.patch.object(sessions, "now_ms", return_value=later + sessions.IDLE_MS - 1000):
        assert sessions.load_session(engine, token) is not None
    with mock.patch.object(sessions, "now_ms", return_value=t0 + sessions.ABSOLUTE_MS + 1):
        assert sessions.load_session(engine, token) is None


def test_an_unused_session_expires_after_the_idle_time(engine):
    t0 = 1_800_000_000_000
    with mock.patch.object(sessions, "now_ms", return_value=t0):
        token, _ = sessions.create_session(engine)
    with mock.patch.object(sessions, "now_ms", return_value=t0 + sessions.IDLE_MS + 1):
        assert sessions.load_session(engine, token) is None
