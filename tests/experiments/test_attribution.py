"""Attribution of what sessions did to arms, from crafted served lists and events (attribution.py's rules),
and the report, daily series and CSV built on it."""
import csv
import io

import numpy as np
import pytest
from sqlalchemy import insert, update

from backend.experiments.attribution import DAY_MS, collect
from backend.experiments.report import (CSV_COLUMNS, METRICS, experiment_csv, experiment_report, series_csv,
                                        uplift_series)
from backend.store.experiments import Arm, change_status, create_experiment, get_experiment
from backend.store.sites import create_site
from backend.store.tables import Event, Experiment, ServedList

T0 = 1_780_000_000_000 - 1_780_000_000_000 % DAY_MS + 3_600_000     # 01:00 UTC on some day
S1, S2, S3, S4 = ("session-one-aaaaaaaaaaaaaa", "session-two-bbbbbbbbbbbbbb", "session-three-cccccccccccc",
                  "session-four-dddddddddddd")


def served(rec, session, arm, ms, experiment_id, items=("x", "y")):
    return {"rec": rec, "site_id": 1, "session": session, "placement": "p", "algorithm": "popular", "arm": arm,
            "experiment_id": experiment_id, "fallback": None, "items": list(items), "served_ms": ms}


def event(session, type_, ms, item=None, rec=None, value=None, items=None):
    return {"site_id": 1, "session": session, "type": type_, "item": item, "rec": rec, "items": items,
            "value": value, "currency": None, "client_ms": None, "received_ms": ms}


@pytest.fixture
def experiment(engine):
    site = create_site(engine, "shop", []).site_id
    assert site == 1
    exp = create_experiment(engine, site, "p", "test", [Arm("A", "popular"), Arm("B", "gru4rec_next"),
                                                        Arm("H", "holdout")])
    change_status(engine, exp.id, "start")
    with engine.begin() as conn:      # a known start time, so that days are known
        conn.execute(update(Experiment).where(Experiment.id == exp.id).values(started_ms=T0))
    other = create_experiment(engine, site, "q", "other", [Arm("A", "popular"), Arm("B", "popular")])
    e, o = exp.id, other.id
    lists = [
        served("r_1", S1, "A", T0 + 10, e), served("r_2", S1, "A", T0 + 50, e),
        served("r_3", S2, "B", T0 + 100, e),
        served("r_h", S3, "H", T0 + 100, e, items=()),
        served("r_other", S2, "A", T0 + 120, o),                 # another experiment's list (placement q)
        served("r_none", S4, None, T0 + 10, None),               # outside any experiment
    ]
    events = [
        # S1 (arm A)
        event(S1, "purchase", T0 + 5, "p0", value=99.0),         # before exposure: not counted anywhere
        event(S1, "rec_impression", T0 + 11, rec="r_1", items=["x", "y"]),
        event(S1, "rec_impression", T0 + 12, rec="r_1", items=["x", "y"]),    # resent: one impression
        event(S1, "rec_click", T0 + 13, "x", rec="r_1"),
        event(S1, "rec_click", T0 + 13, "x", rec="r_1"),         # retried batch: one click
        event(S1, "view", T0 + 14, "x"),                         # last click on x: r_1 -> attributed
        event(S1, "play", T0 + 15, "x"),
        event(S1, "watch", T0 + 16, "x", value=30.0),
        event(S1, "cart", T0 + 17, "x"),
        event(S1, "purchase", T0 + 18, "x", value=10.0),         # attributed, and in the session's total
        event(S1, "view", T0 + 19, "y"),                         # never clicked: not attributed
        event(S1, "purchase", T0 + 20, "y", value=5.0),          # session-wide only
        event(S1, "rec_impression", T0 + 51, rec="r_2", items=["x", "y"]),
        # S2 (arm B)
        event(S2, "purchase", T0 + 101, "z", rec="r_3", value=7.0),           # names its list: attributed
        event(S2, "rec_click", T0 + 121, "w", rec="r_other"),
        event(S2, "purchase", T0 + 122, "w", value=3.0),         # last click was another experiment's list
        event(S2, "rec_click", T0 + DAY_MS + 1, "w", rec="r_3"),  # next day: click on its own list
        event(S2, "view", T0 + DAY_MS + 2, "w"),                 # attributed to r_3, day 1
        event(S2, "purchase", T0 + DAY_MS + 3, "w", value=4.0, rec="r_1"),    # names S1's list: ignored
        # S3 (holdout): nothing shown, buys anyway
        event(S3, "purchase", T0 + 200, "v", value=20.0),
        # S4: never exposed to the experiment
        event(S4, "rec_click", T0 + 11, "x", rec="r_none"), event(S4, "purchase", T0 + 12, "x", value=50.0),
    ]
    with engine.begin() as conn:
        conn.execute(insert(ServedList), lists)
        conn.execute(insert(Event), events)
    return get_experiment(engine, e)


def per_session(data, counter):
    return dict(zip(data.ids, data.totals(counter).tolist()))


def test_attribution_rules_on_crafted_events(engine, experiment):
    data = collect(engine, experiment)
    assert sorted(data.ids) == sorted([S1, S2, S3])
    assert {s: data.arm_names[a] for s, a in zip(data.ids, data.arm)} == {S1: "A", S2: "B", S3: "H"}
    expected = {
        "requests": {S1: 2, S2: 1, S3: 1},
        "impressions": {S1: 2, S2: 0, S3: 0},
        "clicks": {S1: 1, S2: 1, S3: 0},
        "views": {S1: 1, S2: 1, S3: 0},
        "plays": {S1: 1, S2: 0, S3: 0},
        "watch_seconds": {S1: 30.0, S2: 0, S3: 0},
        "carts": {S1: 1, S2: 0, S3: 0},
        "purchases": {S1: 1, S2: 1, S3: 0},
        "revenue": {S1: 10.0, S2: 7.0, S3: 0},
        "session_purchases": {S1: 2, S2: 3, S3: 1},
        "session_revenue": {S1: 15.0, S2: 14.0, S3: 20.0},
    }
    for counter, values in expected.items():
        assert per_session(data, counter) == values, counter


def test_days_and_the_experiments_stop(engine, experiment):
    data = collect(engine, experiment)
    assert data.day0_ms == T0 - 3_600_000 and data.n_days == 2
    clicks_day0 = dict(zip(data.ids, data.totals("clicks", through_day=0).tolist()))
    assert clicks_day0 == {S1: 1, S2: 0, S3: 0}
    # stopping before S2's next-day purchase: the session-wide total ends at the stop,
    # attributed events of lists served while running still count
    with engine.begin() as conn:
        conn.execute(update(Experiment).where(Experiment.id == experiment.id)
                     .values(status="stopped", stopped_ms=T0 + 1000))
    stopped = collect(engine, get_experiment(engine, experiment.id))
    assert per_session(stopped, "session_purchases")[S2] == 2
    assert per_session(stopped, "views")[S2] == 1


def test_report_totals_values_and_uplift(engine, experiment):
    report = experiment_report(engine, experiment.id)
    arms = {a["name"]: a for a in report["arms"]}
    assert report["control"] == "A" and [m["name"] for m in report["metrics"]] == [m.name for m in METRICS]
    assert (arms["A"]["sessions"], arms["A"]["requests"]) == (1, 2)
    assert arms["A"]["kpis"]["clicks"]["value"] == 500.0 and arms["A"]["kpis"]["clicks"]["low"] is None
    assert arms["B"]["kpis"]["clicks"]["value"] == 1000.0
    assert arms["B"]["kpis"]["clicks"]["uplift"] == pytest.approx(1.0)     # 1000 vs 500 per 1,000 requests
    assert arms["A"]["kpis"]["ctr"]["value"] == 0.5
    assert arms["B"]["kpis"]["ctr"]["value"] is None                        # no impressions reported
    assert arms["H"]["kpis"]["session_revenue"]["value"] == 20_000.0
    assert arms["H"]["share_expected"] == pytest.approx(1 / 3) and arms["H"]["share_observed"] == pytest.approx(1 / 3)


def test_csv_has_one_row_per_arm_and_metric_with_the_reports_numbers(engine, experiment):
    report = experiment_report(engine, experiment.id)
    rows = list(csv.DictReader(io.StringIO(experiment_csv(engine, experiment.id))))
    assert len(rows) == 3 * len(METRICS) and tuple(rows[0]) == CSV_COLUMNS
    row = next(r for r in rows if r["arm"] == "B" and r["metric"] == "revenue")
    assert float(row["value"]) == report["arms"][1]["kpis"]["revenue"]["value"] == 7000.0
    assert row["low"] == "" and row["significant"] == "false" and row["placement"] == "p"


def test_daily_series_is_cumulative(engine, experiment):
    series = uplift_series(engine, experiment.id, "clicks")
    assert [d["day"] for d in series["days"]] == [
        np.datetime_as_string(np.datetime64(T0, "ms"), unit="D"),
        np.datetime_as_string(np.datetime64(T0 + DAY_MS, "ms"), unit="D")]
    day0, day1 = (d["arms"] for d in series["days"])
    assert day0["A"]["value"] == 500.0 and day0["B"]["value"] == 0.0 and day0["B"]["uplift"] == -1.0
    assert day1["B"]["value"] == 1000.0 and day1["B"]["uplift"] == pytest.approx(1.0)
    assert "uplift" not in day1["A"]
    rows = list(csv.DictReader(io.StringIO(series_csv(series))))
    assert len(rows) == 2 * 3 and rows[-3]["arm"] == "A"
    with pytest.raises(ValueError, match="metric must be one of"):
        uplift_series(engine, experiment.id, "happiness")


def test_an_experiment_without_traffic_reports_nothing_undefined_as_numbers(engine):
    site = create_site(engine, "empty", []).site_id
    exp = create_experiment(engine, site, "p", "quiet", [Arm("A", "popular"), Arm("B", "gru4rec_next")])
    report = experiment_report(engine, exp.id)
    assert all(a["sessions"] == 0 and a["kpis"]["clicks"]["value"] is None for a in report["arms"])
    assert uplift_series(engine, exp.id)["days"] == []
