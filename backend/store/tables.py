"""SQLAlchemy 2.0 models. The schema changes only through migrations/ (a test checks they agree).

Times are integer milliseconds since the Unix epoch (UTC): one type on SQLite and PostgreSQL, cheap to
compare and to export. No IP address or user agent is stored anywhere.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, MetaData, String,
                        Text, UniqueConstraint, false, text)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from backend.item_ids import ID_MAX  # item ids (api.md); the rule lives there

# Named constraints: SQLite can only alter a constraint it can name (Alembic batch mode).
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

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
    # bumped by every catalogue write: other server processes see it and reload their item cache
    catalog_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    live_model_id: Mapped[int | None] = mapped_column(
        ForeignKey("models.id", ondelete="SET NULL", use_alter=True, name="fk_sites_live_model_id_models"))
    # events without an Origin header (scripts, not browsers) are refused with 403 when set
    require_origin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


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


class Placement(Base):
    """Where a site shows recommendations, and how they are chosen (algorithm, count, filters, fallbacks)."""
    __tablename__ = "placements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    page_kind: Mapped[str] = mapped_column(String(16), default="product")
    algorithm: Mapped[str] = mapped_column(String(24), default="gru4rec_next")
    n: Mapped[int] = mapped_column(Integer, default=8)
    title: Mapped[str] = mapped_column(String(200), default="")
    exclude_seen: Mapped[bool] = mapped_column(Boolean, default=True)
    only_available: Mapped[bool] = mapped_column(Boolean, default=True)
    same_category: Mapped[bool] = mapped_column(Boolean, default=False)
    fallback: Mapped[list[str]] = mapped_column(JSON, default=list)   # strategies tried in order
    diversity: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    max_per_category: Mapped[int | None] = mapped_column(Integer)
    pinned: Mapped[list[dict]] = mapped_column(JSON, default=list, server_default="[]")  # [{"item", "position"}]
    blocked: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    rules: Mapped[list[dict]] = mapped_column(JSON, default=list, server_default="[]")  # store/placement_rules.py
    updated_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("site_id", "name"),)


class Model(Base):
    """A trained artifact on disk and what is known about it; ``sites.live_model_id`` names the live one."""
    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    promoted_ms: Mapped[int | None] = mapped_column(BigInteger)   # last time it became live
    # the bundle's content address (SHA-256 of its SHA256SUMS), its files in the blob store; None: a model
    # registered by a local path only (before models travelled through the store)
    sha256: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_models_site_created", "site_id", "created_ms"),)


class Blob(Base):
    """A file in the database, content-addressed (backend/store/blobs.py): present once this row exists."""
    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    chunks: Mapped[int] = mapped_column(Integer)
    created_ms: Mapped[int] = mapped_column(BigInteger)


class BlobChunk(Base):
    """One chunk of a blob, in order (``seq`` from 0)."""
    __tablename__ = "blob_chunks"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ServedList(Base):
    """One answer of GET /v1/recommendations, for attribution of impressions, clicks and purchases."""
    __tablename__ = "served_lists"
    rec: Mapped[str] = mapped_column(String(REC_MAX), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    session: Mapped[str | None] = mapped_column(String(SESSION_MAX))
    placement: Mapped[str] = mapped_column(String(64))
    algorithm: Mapped[str] = mapped_column(String(24))
    arm: Mapped[str | None] = mapped_column(String(32))
    experiment_id: Mapped[int | None] = mapped_column(Integer)   # the running experiment that chose the arm
    fallback: Mapped[str | None] = mapped_column(String(64))
    items: Mapped[list[str]] = mapped_column(JSON)
    served_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_served_lists_site_served", "site_id", "served_ms"),
                      Index("ix_served_lists_site_session", "site_id", "session"),
                      Index("ix_served_lists_experiment", "experiment_id", "session"))


# ---------------------------------------------------------------------------------------------- admin (0003)

class AdminCredentials(Base):
    """The admin login (one row, id 1): the scrypt hash of the password when it was set on the admin page, the
    hash of the one-time setup code that allows setting it, and the secret that signs the login forms' tokens."""
    __tablename__ = "admin_credentials"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(Text)
    setup_code_hash: Mapped[str | None] = mapped_column(String(64))
    secret: Mapped[str] = mapped_column(String(64))
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class AdminSession(Base):
    """A logged-in admin browser. The cookie holds a random token; only its SHA-256 is stored."""
    __tablename__ = "admin_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    last_seen_ms: Mapped[int] = mapped_column(BigInteger)
    expires_ms: Mapped[int] = mapped_column(BigInteger)


class AdminLoginFailure(Base):
    """One failed login, for throttling; ``client`` is a keyed hash of the address, deleted after the window."""
    __tablename__ = "admin_login_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client: Mapped[str] = mapped_column(String(64))
    at_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_admin_login_failures_client_at", "client", "at_ms"),
                      Index("ix_admin_login_failures_at", "at_ms"))


class AppSetting(Base):
    """An override, set on the admin page, of an ``UPNEXT_*`` default (the name is the setting's field name)."""
    __tablename__ = "app_settings"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class TrainingRun(Base):
    """One background training run (its own process): what was asked, its progress, and how it ended.

    status: queued -> running -> succeeded | failed | cancelled. ``heartbeat_ms`` is written by the run process
    every few seconds; a run whose heartbeat stops is marked failed by any server process."""
    __tablename__ = "training_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16))                 # manual | schedule | first_model
    params: Mapped[str] = mapped_column(Text)                        # preset or parameter string
    gate: Mapped[bool] = mapped_column(Boolean, default=False)       # promote if it passes the gate
    status: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str] = mapped_column(String(32), default="")
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    log_path: Mapped[str | None] = mapped_column(Text)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    started_ms: Mapped[int | None] = mapped_column(BigInteger)
    heartbeat_ms: Mapped[int | None] = mapped_column(BigInteger)
    finished_ms: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_training_runs_site_created", "site_id", "created_ms"),
                      Index("ix_training_runs_status", "status"),
                      # at most one queued or running run per site, whichever process starts it
                      Index("uq_training_runs_active_site", "site_id", unique=True,
                            sqlite_where=text("status IN ('queued', 'running')"),
                            postgresql_where=text("status IN ('queued', 'running')")))


class TrainingSchedule(Base):
    """Scheduled retraining of a site; a server process claims a due run by moving ``next_run_ms`` (one wins)."""
    __tablename__ = "training_schedules"
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    every_hours: Mapped[float] = mapped_column(Float, default=24.0)
    params: Mapped[str] = mapped_column(Text, default="")
    next_run_ms: Mapped[int] = mapped_column(BigInteger)
    last_run_id: Mapped[int | None] = mapped_column(Integer)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class Experiment(Base):
    """An A/B test on one placement: arms with traffic shares, a salt for hashing sessions into arms, and a
    life cycle (draft -> running <-> paused -> stopped). At most one experiment per placement is running: a
    partial unique index (SQLite and PostgreSQL) refuses a second one, whatever process tries."""
    __tablename__ = "experiments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    placement: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    salt: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="draft")     # draft, running, paused, stopped
    arms: Mapped[list[dict[str, Any]]] = mapped_column(JSON)            # [{name, algorithm, share}], control first
    created_ms: Mapped[int] = mapped_column(BigInteger)
    started_ms: Mapped[int | None] = mapped_column(BigInteger)          # first start
    stopped_ms: Mapped[int | None] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("uq_experiments_one_running", "site_id", "placement", unique=True,
              sqlite_where=text("status = 'running'"), postgresql_where=text("status = 'running'")),
        Index("ix_experiments_site_placement", "site_id", "placement"),
    )


# ------------------------------------------------------------------------------------- install check (0012)

class SiteOrigin(Base):
    """Where a site's requests came from, by kind: ``script`` (w.js loaded by a page of an allowed origin, from its
    Referer), ``events`` and ``recommendations`` (accepted), ``refused`` (the key's site does not allow the origin).
    For the admin's install check; counts are flushed from memory every few seconds (store/origins.py)."""
    __tablename__ = "site_origins"
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    origin: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    first_ms: Mapped[int] = mapped_column(BigInteger)
    last_ms: Mapped[int] = mapped_column(BigInteger)


class TuningStudy(Base):
    """A hyperparameter search (``upnext tune``, the admin's "tune, then train"): its trials are kept so that a
    study of the same name continues where it stopped. ``config``: the search's fixed settings (seed, parameters
    held fixed, validation share), checked when a study resumes."""
    __tablename__ = "tuning_studies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(Text, default="")                # the data it tunes on
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_ms: Mapped[int] = mapped_column(BigInteger)


class TuningTrial(Base):
    """One finished trial of a study: the parameters tried and the served-setting score on the validation split
    (``value``, NULL for a failed trial)."""
    __tablename__ = "tuning_trials"
    __table_args__ = (UniqueConstraint("study_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("tuning_studies.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))                       # complete | failed
    params: Mapped[dict[str, Any]] = mapped_column(JSON)                 # the sampled values, by Optuna name
    value: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    seconds: Mapped[float] = mapped_column(Float)
    finished_ms: Mapped[int] = mapped_column(BigInteger)
