"""PostgreSQL: events partitioned by day on received_ms (issue 16, part 4); SQLite unchanged

The table is rebuilt as ``PARTITION BY RANGE (received_ms)`` with one partition per UTC day of the existing rows
(plus today and the next days, and a DEFAULT partition that catches anything outside them), the rows copied
over, ids kept (the same sequence goes on). The primary key becomes (id, received_ms): PostgreSQL requires the
partition key in it. backend/store/partitions.py creates the coming days' partitions and drops expired ones.

Revision ID: 0011
Revises: 0009
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None

DAY_MS = 86_400_000
AHEAD_DAYS = 3
INDEXES = {"ix_events_rec": "rec", "ix_events_received": "received_ms",
           "ix_events_site_session": "site_id, session, received_ms",
           "ix_events_site_type_session": "site_id, type, session, client_ms"}
COLUMNS = "id, site_id, session, type, item, rec, items, value, currency, client_ms, received_ms"


def _create_events(pk: str, partitioned: bool) -> None:
    op.execute(f"""
        CREATE TABLE events (
            id BIGINT NOT NULL DEFAULT nextval('events_id_seq'),
            site_id INTEGER NOT NULL,
            session VARCHAR(64) NOT NULL,
            type VARCHAR(16) NOT NULL,
            item VARCHAR(256),
            rec VARCHAR(64),
            items JSON,
            value FLOAT,
            currency VARCHAR(3),
            client_ms BIGINT,
            received_ms BIGINT NOT NULL,
            CONSTRAINT pk_events PRIMARY KEY ({pk}),
            CONSTRAINT fk_events_site_id_sites FOREIGN KEY (site_id) REFERENCES sites (id) ON DELETE CASCADE
        ) {"PARTITION BY RANGE (received_ms)" if partitioned else ""}""")


def _rename_old() -> None:
    op.execute("ALTER TABLE events RENAME TO events_old")
    op.execute("ALTER TABLE events_old RENAME CONSTRAINT pk_events TO pk_events_old")
    op.execute("ALTER TABLE events_old RENAME CONSTRAINT fk_events_site_id_sites TO fk_events_old_site")
    for name in INDEXES:
        op.execute(f"ALTER INDEX {name} RENAME TO {name}_old")
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY NONE")


def _finish() -> None:
    for name, cols in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON events ({cols})")
    op.execute(f"INSERT INTO events ({COLUMNS}) SELECT {COLUMNS} FROM events_old")
    op.execute("DROP TABLE events_old")
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY events.id")


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    _rename_old()
    _create_events("id, received_ms", partitioned=True)
    op.execute("CREATE TABLE events_default PARTITION OF events DEFAULT")
    lo, hi = conn.execute(sa.text("SELECT min(received_ms), max(received_ms) FROM events_old")).one()
    now = conn.execute(sa.text("SELECT (extract(epoch FROM now()) * 1000)::bigint")).scalar()
    first = min(lo if lo is not None else now, now) // DAY_MS
    last = max(hi if hi is not None else now, now) // DAY_MS + AHEAD_DAYS
    for day in range(first, last + 1):
        name = "events_p" + datetime.fromtimestamp(day * DAY_MS / 1000, timezone.utc).strftime("%Y%m%d")
        op.execute(f"CREATE TABLE {name} PARTITION OF events FOR VALUES FROM ({day * DAY_MS}) "
                   f"TO ({(day + 1) * DAY_MS})")
    _finish()


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _rename_old()
    _create_events("id", partitioned=False)
    _finish()
