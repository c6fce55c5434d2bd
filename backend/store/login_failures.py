"""Failed admin logins (``admin_login_failures``), shared by all server processes: one row per attempt with the
client's keyed address hash and the time, written before its password is checked (a failure until the login
succeeds and clears it). The throttling rule that reads them: backend/access/login_throttle.py."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, select

from backend.store.tables import AdminLoginFailure


@dataclass(frozen=True)
class RecentFailures:
    """What the throttle needs of the failures in its window: ``client_times``, the client's newest ones (unix
    ms, newest first, at most ``client_limit``); ``global_oldest_counted``, when everybody together has
    ``global_limit`` failures or more, the time of the ``global_limit``-th newest one (else None)."""
    client_times: list[int]
    global_oldest_counted: int | None


def recent_failures(engine: Engine, client: str, since_ms: int, *, client_limit: int,
                    global_limit: int) -> RecentFailures:
    """The failures after ``since_ms``, as much of them as the throttle needs (see RecentFailures)."""
    with engine.connect() as conn:
        mine = conn.execute(select(AdminLoginFailure.at_ms).where(
            AdminLoginFailure.client == client, AdminLoginFailure.at_ms > since_ms)
            .order_by(AdminLoginFailure.at_ms.desc()).limit(client_limit)).scalars().all()
        everyone = conn.execute(select(func.count()).select_from(AdminLoginFailure)
                                .where(AdminLoginFailure.at_ms > since_ms)).scalar_one()
        oldest_counted = None
        if everyone >= global_limit:
            oldest_counted = conn.execute(
                select(AdminLoginFailure.at_ms).where(AdminLoginFailure.at_ms > since_ms)
                .order_by(AdminLoginFailure.at_ms.desc()).offset(global_limit - 1).limit(1)).scalar()
    return RecentFailures(list(mine), oldest_counted)


def record_attempt(engine: Engine, client: str, at_ms: int, *, forget_until_ms: int) -> int:
    """Add an attempt (committed when this returns) and return its row id, deleting those at or before
    ``forget_until_ms`` (out of every window) on the way."""
    with engine.begin() as conn:
        conn.execute(delete(AdminLoginFailure).where(AdminLoginFailure.at_ms <= forget_until_ms))
        return conn.execute(AdminLoginFailure.__table__.insert().values(client=client, at_ms=at_ms)
                            .returning(AdminLoginFailure.id)).scalar_one()


def delete_attempt(engine: Engine, attempt_id: int) -> None:
    """Forget one attempt (it was refused without checking its password)."""
    with engine.begin() as conn:
        conn.execute(delete(AdminLoginFailure).where(AdminLoginFailure.id == attempt_id))


def clear_failures(engine: Engine, client: str) -> None:
    """Forget a client's failures (it logged in)."""
    with engine.begin() as conn:
        conn.execute(delete(AdminLoginFailure).where(AdminLoginFailure.client == client))
