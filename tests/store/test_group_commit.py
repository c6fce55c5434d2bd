import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from backend.store.group_commit import GroupCommitWriter, StoreBusy, StoreUnavailable
from backend.store.sites import create_site
from backend.store.tables import Event
from tests.support.aio import run


def _row(site_id, i):
    return {"site_id": site_id, "session": f"session-{i:020d}", "type": "view", "item": f"I{i}", "rec": None,
            "items": None, "value": None, "currency": None, "client_ms": None, "received_ms": 1}


def _count(engine):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Event)).scalar()


def test_concurrent_submissions_share_commits_and_are_stored_before_returning(engine):
    site = create_site(engine, "shop", []).site_id
    commits = []
    writer = GroupCommitWriter(engine, Event.__table__, interval_s=0.005, on_commit=lambda n, s: commits.append(n))

    async def main():
        await writer.start()
        async def one(i):
            await writer.submit([_row(site, i * 10 + k) for k in range(10)])
            return _count(engine)              # committed by the time submit returns
        counts = await asyncio.gather(*(one(i) for i in range(50)))
        await writer.stop()
        return counts

    counts = run(main())
    assert _count(engine) == 500 and min(counts) >= 10
    assert sum(commits) == 500 and len(commits) < 50      # grouped


def test_stop_drains_accepted_events_and_refuses_new_ones(engine):
    site = create_site(engine, "shop", []).site_id
    writer = GroupCommitWriter(engine, Event.__table__, interval_s=0.05)

    async def main():
        await writer.start()
        pending = [asyncio.create_task(writer.submit([_row(site, i)])) for i in range(20)]
        await asyncio.sleep(0)
        await writer.stop()
        await asyncio.gather(*pending)
        with pytest.raises(StoreUnavailable):
            await writer.submit([_row(site, 99)])

    run(main())
    assert _count(engine) == 20


def test_backpressure_and_database_errors(engine, monkeypatch):
    site = create_site(engine, "shop", []).site_id
    writer = GroupCommitWriter(engine, Event.__table__, interval_s=0.05, max_pending=100)

    async def main():
        await writer.start()
        first = asyncio.create_task(writer.submit([_row(site, i) for i in range(100)]))
        await asyncio.sleep(0)
        with pytest.raises(StoreBusy):
            await writer.submit([_row(site, 1000)])
        await first

        def broken(rows):
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        monkeypatch.setattr(writer, "_insert", broken)
        with pytest.raises(StoreUnavailable, match="locked"):
            await writer.submit([_row(site, 2000)])
        await writer.stop()

    run(main())
    assert _count(engine) == 100


def test_put_nowait_commits_without_waiting(engine):
    site = create_site(engine, "shop", []).site_id
    writer = GroupCommitWriter(engine, Event.__table__, interval_s=0.01, max_pending=5)

    async def main():
        await writer.start()
        assert writer.put_nowait([_row(site, i) for i in range(5)])
        assert not writer.put_nowait([_row(site, 9)])     # full: refused, nothing queued
        await writer.stop()
        assert not writer.put_nowait([_row(site, 10)])    # closed

    run(main())
    assert _count(engine) == 5
