"""Where each site's requests come from (table ``site_origins``), for the admin's install check: the origins
that loaded the script, sent events, asked for recommendations, and those refused (an origin the site does not
allow, so a missing ``https://www.`` shows with the very origin the browser sent).

Requests never write here: they note the origin in memory (``OriginLog.note``, a dict update) and a background
task flushes the counts every few seconds. Bounded: at most ``MAX_PENDING`` distinct (site, kind, origin) wait in
memory and ``MAX_PER_SITE`` origins are kept per site and kind (a script sending made-up Origin headers with a
copied key cannot grow the table); counts of origins already stored keep counting.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from backend.clock import now_ms
from backend.store.tables import SiteOrigin

KINDS = ("script", "events", "recommendations", "refused")
MAX_PENDING = 1000
MAX_PER_SITE = 50
ORIGIN_MAX = 200


@dataclass(frozen=True)
class SeenOrigin:
    kind: str
    origin: str
    count: int
    first_ms: int
    last_ms: int


class OriginLog:
    """Counts noted by requests, flushed to the store by a background task."""

    def __init__(self):
        self._pending: dict[tuple[int, str, str], list[int]] = {}
        self._lock = threading.Lock()

    def note(self, site_id: int, kind: str, origin: str | None, *, now: int | None = None) -> None:
        if not origin:
            return
        key = (site_id, kind, origin[:ORIGIN_MAX])
        now = now_ms() if now is None else now
        with self._lock:
            entry = self._pending.get(key)
            if entry is not None:
                entry[0] += 1
                entry[2] = now
            elif len(self._pending) < MAX_PENDING:
                self._pending[key] = [1, now, now]

    def flush(self, engine: Engine) -> int:
        """Write the noted counts; returns how many (site, kind, origin) were written. On a database error the
        counts are put back (merged with newer ones) and the error raised."""
        with self._lock:
            pending, self._pending = self._pending, {}
        try:
            for (site_id, kind, origin), (n, first, last) in pending.items():
                _add(engine, site_id, kind, origin, n, first, last)
        except Exception:
            with self._lock:
                for key, (n, first, last) in pending.items():
                    entry = self._pending.setdefault(key, [0, first, last])
                    entry[0] += n
                    entry[1], entry[2] = min(entry[1], first), max(entry[2], last)
            raise
        return len(pending)


def _add(engine: Engine, site_id: int, kind: str, origin: str, n: int, first: int, last: int) -> None:
    where = (SiteOrigin.site_id == site_id, SiteOrigin.kind == kind, SiteOrigin.origin == origin)
    with engine.begin() as conn:
        done = conn.execute(update(SiteOrigin).where(*where).values(
            count=SiteOrigin.count + n, last_ms=func.max(SiteOrigin.last_ms, last)
            if engine.dialect.name == "sqlite" else func.greatest(SiteOrigin.last_ms, last))).rowcount
        if done:
            return
        kept = conn.execute(select(func.count()).select_from(SiteOrigin)
                            .where(SiteOrigin.site_id == site_id, SiteOrigin.kind == kind)).scalar_one()
        if kept >= MAX_PER_SITE:
            return
    try:
        with engine.begin() as conn:
            conn.execute(SiteOrigin.__table__.insert().values(site_id=site_id, kind=kind, origin=origin, count=n,
                                                              first_ms=first, last_ms=last))
    except IntegrityError:          # another process inserted it meanwhile: add to its row
        with engine.begin() as conn:
            conn.execute(update(SiteOrigin).where(*where).values(count=SiteOrigin.count + n))


def seen_origins(engine: Engine, site_id: int) -> list[SeenOrigin]:
    """The site's origins, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(SiteOrigin).where(SiteOrigin.site_id == site_id)
                            .order_by(SiteOrigin.last_ms.desc())).all()
    return [SeenOrigin(r.kind, r.origin, int(r.count), int(r.first_ms), int(r.last_ms)) for r in rows]
