"""SQLAlchemy 2.0 models. The schema changes only through migrations/ (a test checks they agree).

Times are integer milliseconds since the Unix epoch (UTC): one type on SQLite and PostgreSQL, cheap to
compare and to export. No IP address or user agent is stored anywhere.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, MetaData, String,
                        Text)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints: SQLite can only alter a constraint it can name (Alembic batch mode).
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_MAX = 256        # item ids, api.md
SESSION_MAX = 64    # session ids, api.md
REC_MAX = 64        # rec ids
EVENT_TYPES = ("view", "rec_impression", "rec_click", "play", "watch", "cart", "purchase")
VIEW_LIKE = frozenset({"view", "rec_click", "play"})   # events that move a session to an item


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Site(Base):
    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    allowed_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    publishable_key: Mapped[str] = mapped_column(String(64), unique=True)
    secret_key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the secret key
    created_ms: Mapped[int] = mapped_column(BigInteger)


class Item(Base):
    __tablename__ = "items"
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(String(ID_MAX), primary_key=True)
    title: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(Text)
    image: Mapped[str | None] = mapped_column(Text)
    price: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String(3))
    category: Mapped[str | None] = mapped_column(String(256))
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_items_site_updated", "site_id", "updated_ms"),)


class Event(Base):
    """One row per accepted event; ``value`` is seconds for ``watch`` and the amount for ``purchase``."""
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    session: Mapped[str] = mapped_column(String(SESSION_MAX))
    type: Mapped[str] = mapped_column(String(16))
    item: Mapped[str | None] = mapped_column(String(ID_MAX))
    rec: Mapped[str | None] = mapped_column(String(REC_MAX))
    items: Mapped[list[str] | None] = mapped_column(JSON)  # rec_impression: the items shown
    value: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String(3))
    client_ms: Mapped[int | None] = mapped_column(BigInteger)
    received_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        # training export: one site's view-like events grouped by session, in time order
        Index("ix_events_site_type_session", "site_id", "type", "session", "client_ms"),
        # per-session reads (simulator, admin session view, attribution within a session)
        Index("ix_events_site_session", "site_id", "session", "received_ms"),
        # attribution of clicks and purchases to a served list
        Index("ix_events_rec", "rec"),
        # retention purge and time-range queries
        Index("ix_events_received", "received_ms"),
    )
