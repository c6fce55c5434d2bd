"""The ``admin_credentials`` row (id 1): the admin password's hash, the hash of the one-time setup code and the
server's admin secret. What they mean and how they are checked: backend/access/credentials.py."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from backend.clock import now_ms
from backend.store.tables import AdminCredentials, AdminSession

ROW_ID = 1


@dataclass(frozen=True)
class Credentials:
    password_hash: str | None
    setup_code_hash: str | None
    secret: str


def load_credentials(engine: Engine) -> Credentials:
    """The credentials row, created (with a new secret) when missing; safe when processes race to create it."""
    with engine.begin() as conn:
        row = conn.execute(select(AdminCredentials).where(AdminCredentials.id == ROW_ID)).first()
        if row is None:
            table = AdminCredentials.__table__
            insert = (_dialect_insert(conn.dialect.name))(table).values(
                id=ROW_ID, secret=secrets.token_hex(32), updated_ms=now_ms())
            conn.execute(insert.on_conflict_do_nothing(index_elements=["id"]))
            row = conn.execute(select(AdminCredentials).where(AdminCredentials.id == ROW_ID)).first()
    return Credentials(row.password_hash, row.setup_code_hash, row.secret)


def _dialect_insert(dialect: str):
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def save_password_hash(engine: Engine, password_hash: str) -> None:
    """Store a new password hash, drop the setup code and end every admin session, in one transaction."""
    load_credentials(engine)                     # the row exists from here on
    with engine.begin() as conn:
        conn.execute(update(AdminCredentials).where(AdminCredentials.id == ROW_ID).values(
            password_hash=password_hash, setup_code_hash=None, updated_ms=now_ms()))
        conn.execute(delete(AdminSession))


def replace_setup_code_hash(engine: Engine, seen_hash: str | None, new_hash: str) -> bool:
    """Compare-and-set of the setup code's hash: True when this call replaced ``seen_hash`` (the value the caller
    read; None for none) by ``new_hash``; False when another process changed it first or a password is set."""
    column = AdminCredentials.setup_code_hash
    with engine.begin() as conn:
        return conn.execute(update(AdminCredentials).where(
            AdminCredentials.id == ROW_ID, AdminCredentials.password_hash.is_(None),
            column.is_(None) if seen_hash is None else column == seen_hash)
            .values(setup_code_hash=new_hash, updated_ms=now_ms())).rowcount == 1
