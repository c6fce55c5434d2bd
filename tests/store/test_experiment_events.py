"""An experiment's served lists and events at volume on PostgreSQL (issue 16, part 4): the days before the
experiment are not read."""
import pytest

from backend.store.db import make_engine, migrate
from backend.store.experiment_events import experiment_traffic
from backend.store.experiments import Arm, ExperimentInfo
from backend.store.partitions import DAY_MS, ensure_partitions
from backend.store.sites import create_site
from tests.support.plans import describe, explain, fill, holding_rows, recorded

NOW = 1_800_000_000_000          # 2027-01-15 08:00 UTC
CREATED = NOW - 2 * DAY_MS


@pytest.mark.postgres
def test_the_days_before_the_experiment_are_not_read(postgres_server):
    url = postgres_server.create_database("upnext_experiment_plans")
    migrate(url)
    engine = make_engine(url)
    site = create_site(engine, "shop", []).site_id
    ensure_partitions(engine, now=NOW - 10 * DAY_MS, ahead_days=13)
    fill(engine, site, start_ms=NOW - 10 * DAY_MS, end_ms=NOW, events=50_000, served=30_000,
         experiment_id=7, experiment_from_ms=CREATED)
    exp = ExperimentInfo(7, site, "home", "x", "salt", "running", (Arm("A", "popular"), Arm("B", "popular")),
                         CREATED, CREATED, None)
    with recorded(engine) as sent:
        traffic = experiment_traffic(engine, exp)
    assert len(traffic.lists) == 30_000 * 2 // 10 // 10 and traffic.events          # one in ten, two days of ten
    full = holding_rows(engine)
    before = {f"{t}_p202701{d:02d}" for t in ("events", "served_lists") for d in range(5, 12)}   # Jan 5-11
    assert before <= full
    for statement, parameters in sent:
        scans = explain(engine, statement, parameters)
        assert not {s.relation for s in scans} & before, describe(scans)
    engine.dispose()
