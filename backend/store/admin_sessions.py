"""Admin sessions, stored in the database so that every server process (``--workers N``) knows them.

The browser holds a random 256-bit token in the admin cookie; the table keeps only its SHA-256, so a copy of the
database does not let anyone in. Each session has its own CSRF token (a form field on every page). A session
ends at logout, after ``IDLE_MS`` without a request, ``ABSOLUTE_MS`` after login, or when the password changes.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, delete, select, update

from backend.clock import now_ms
from backend.store.tables import AdminSession

IDLE_MS = 12 * 3600 * 1000
ABSOLUTE_MS = 7 * 86400 * 1000
TOUCH_EVERY_MS = 60_000          # last_seen is written at most this often per session


@dataclass(frozen=True)
class SessionInfo:
    token_hash: str
    csrf_token: str
    created_ms: int
    expires_ms: int


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_session(engine: Engine) -> tuple[str, SessionInfo]:
    """A new session; returns (cookie token, its info). Also deletes expired sessions."""
    token, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), now_ms()
    expires = now + IDLE_MS
    with engine.begin() as conn:
        conn.execute(delete(AdminSession).where(AdminSession.expires_ms < now))
        conn.execute(AdminSession.__table__.insert().values(token_hash=_hash(token), csrf_token=csrf,
                                                            created_ms=now, last_seen_ms=now,
                                                            expires_ms=expires))
    return token, SessionInfo(_hash(token), csrf, now, expires)


def load_session(engine: Engine, token: str | None) -> SessionInfo | None:
    """The live session of a cookie token, or None (unknown, expired). Extends the idle deadline."""
    if not token or len(token) > 128:
        return None
    now = now_ms()
    with engine.connect() as conn:
        row = conn.execute(select(AdminSession).where(AdminSession.token_hash == _hash(token))).first()
    if row is None or row.expires_ms < now:
        return None
    if now - row.last_seen_ms >= TOUCH_EVERY_MS:
        expires = min(now + IDLE_MS, row.created_ms + ABSOLUTE_MS)
        with engine.begin() as conn:
            conn.execute(update(AdminSession).where(AdminSession.token_hash == row.token_hash)
                         .values(last_seen_ms=now, expires_ms=expires))
        return SessionInfo(row.token_hash, row.csrf_token, row.created_ms, expires)
    return SessionInfo(row.token_hash, row.csrf_token, row.created_ms, row.expires_ms)


def end_session(engine: Engine, token_hash: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(AdminSession).where(AdminSession.token_hash == token_hash))
