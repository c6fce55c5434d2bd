"""PostgreSQL: served lists partitioned by day on served_ms, like the events (issue 16, part 4); SQLite unchanged

The table is rebuilt as ``PARTITION BY RANGE (served_ms)`` with one partition per UTC day of the existing rows
(plus today and the next days, and a DEFAULT partition that catches anything outside them), the rows copied
over. The primary key becomes (rec, served_ms): PostgreSQL requires the partition key in it (a rec is a random
token, so it stays unique in practice). backend/store/partitions.py creates the coming days' partitions and
retention drops expired ones.

Revision ID: 0013
Revises: 0006
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0006'
branch_labels = None
depends_on = None

DAY_MS = 86_400_000
AHEAD_DAYS = 3
INDEXES = {"ix_served_lists_site_served": "site_id, served_ms",
           "ix_served_lists_site_session": "site_id, session",
           "ix_served_lists_experiment": "experiment_id, session"}
COLUMNS = "rec, site_id, session, placement, algorithm, arm, experiment_id, fallback, items, served_ms"


def _create(pk: str, partitioned: bool) -> None:
    op.execute(f"""
        CREATE TABLE served_lists (
            rec VARCHAR(64) NOT NULL,
            site_id INTEGER NOT NULL,
            session VARCHAR(64),
            placement VARCHAR(64) NOT NULL,
            algorithm VARCHAR(24) NOT NULL,
            arm VARCHAR(32),
            experiment_id INTEGER,
            fallback VARCHAR(64),
            items JSON NOT NULL,
            served_ms BIGINT NOT NULL,
            CONSTRAINT pk_served_lists PRIMARY KEY ({pk}),
            CONSTRAINT fk_served_lists_site_id_sites FOREIGN KEY (site_id) REFERENCES sites (id) ON DELETE CASCADE
        ) {"PARTITION BY RANGE (served_ms)" if partitioned else ""}""")


def _rename_old() -> None:
    op.execute("ALTER TABLE served_lists RENAME TO served_lists_old")
    op.execute("ALTER TABLE served_lists_old RENAME CONSTRAINT pk_served_lists TO pk_served_lists_old")
    op.execute("ALTER TABLE served_lists_old RENAME CONSTRAINT fk_served_lists_site_id_sites "
               "TO fk_served_lists_old_site")
    for name in INDEXES:
        op.execute(f"ALTER INDEX {name} RENAME TO {name}_old")


def _finish() -> None:
    for name, cols in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON served_lists ({cols})")
    op.execute(f"INSERT INTO served_lists ({COLUMNS}) SELECT {COLUMNS} FROM served_lists_old")
    op.execute("DROP TABLE served_lists_old")


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    _rename_old()
    _create("rec, served_ms", partitioned=True)
    op.execute("CREATE TABLE served_lists_default PARTITION OF served_lists DEFAULT")
    lo, hi = conn.execute(sa.text("SELECT min(served_ms), max(served_ms) FROM served_lists_old")).one()
    now = conn.execute(sa.text("SELECT (extract(epoch FROM now()) * 1000)::bigint")).scalar()
    first = min(lo if lo is not None else now, now) // DAY_MS
    last = max(hi if hi is not None else now, now) // DAY_MS + AHEAD_DAYS
    for day in range(first, last + 1):
        name = "served_lists_p" + datetime.fromtimestamp(day * DAY_MS / 1000, timezone.utc).strftime("%Y%m%d")
        op.execute(f"CREATE TABLE {name} PARTITION OF served_lists FOR VALUES FROM ({day * DAY_MS}) "
                   f"TO ({(day + 1) * DAY_MS})")
    _finish()


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _rename_old()
    _create("rec", partitioned=False)
    _finish()
