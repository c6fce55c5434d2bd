"""``upnext experiment``: create, list, start, pause, stop and report from the command line."""
import csv
import io
import json

import pytest

from backend.cli import main
from backend.store.sites import create_site


@pytest.fixture
def site(engine, monkeypatch, db_url):
    monkeypatch.setenv("UPNEXT_DATABASE_URL", db_url)
    return create_site(engine, "shop", [])


def run(capsys, *args) -> str:
    assert main(["experiment", *args]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def test_create_start_pause_stop_and_report(capsys, site):
    created = json.loads(run(capsys, "create", "--placement", "product-page", "--name", "GRU vs popular",
                             "--arm", "control=popular", "--arm", "gru=gru4rec_next:3", "--arm", "none=holdout"))
    assert created["status"] == "draft" and created["control"] == "control"
    assert [(a["name"], a["algorithm"], a["share"]) for a in created["arms"]] == [
        ("control", "popular", 1), ("gru", "gru4rec_next", 3), ("none", "holdout", 1)]
    exp_id = str(created["id"])
    assert json.loads(run(capsys, "start", exp_id))["status"] == "running"
    assert "running" in run(capsys, "list")
    assert json.loads(run(capsys, "pause", exp_id))["status"] == "paused"
    assert json.loads(run(capsys, "stop", exp_id))["status"] == "stopped"
    table = run(capsys, "report", exp_id)
    assert "Clicks per 1,000 requests" in table and "control" in table
    rows = list(csv.DictReader(io.StringIO(run(capsys, "report", exp_id, "--csv"))))
    assert {r["arm"] for r in rows} == {"control", "gru", "none"}
    assert json.loads(run(capsys, "report", exp_id, "--json"))["experiment"]["status"] == "stopped"
    assert run(capsys, "report", exp_id, "--series", "revenue").startswith("day,metric,arm")


@pytest.mark.parametrize("args, message", [
    (["create", "--placement", "p", "--name", "x", "--arm", "a=popular"], "2-8 arms"),
    (["create", "--placement", "p", "--name", "x", "--arm", "a", "--arm", "b=popular"], "NAME=ALGORITHM"),
    (["create", "--placement", "p", "--name", "x", "--arm", "a=popular:x", "--arm", "b=popular"], "whole number"),
    (["start", "999"], "no experiment 999"),
    (["report", "999"], "no experiment 999"),
])
def test_mistakes_are_explained(capsys, site, args, message):
    assert main(["experiment", *args]) == 1
    assert message in capsys.readouterr().err


def test_a_bad_series_metric_is_named(capsys, site):
    exp = json.loads(run(capsys, "create", "--placement", "p", "--name", "x", "--arm", "a=popular",
                         "--arm", "b=popular"))
    assert main(["experiment", "report", str(exp["id"]), "--series", "joy"]) == 1
    assert "metric must be one of" in capsys.readouterr().err


def test_arm_settings_compare_two_settings_of_one_algorithm(capsys, site):
    created = json.loads(run(capsys, "create", "--placement", "p", "--name", "diversity", "--arm",
                             "plain=gru4rec_next", "--arm", "diverse=gru4rec_next",
                             "--arm-settings", 'diverse={"diversity": 0.3}'))
    assert created["arms"][1] == {"name": "diverse", "algorithm": "gru4rec_next", "share": 1,
                                  "overrides": {"diversity": 0.3}}
    assert "diverse=gru4rec_next (diversity=0.3):1" in run(capsys, "list")
    for bad, message in (('other={"diversity": 0.3}', "NAME one of the --arm names"),
                         ("diverse={", "not JSON"), ('diverse={"diversity": 9}', "diversity: a number")):
        assert main(["experiment", "create", "--placement", "p", "--name", "x", "--arm", "plain=popular",
                     "--arm", "diverse=popular", "--arm-settings", bad]) == 1
        assert message in capsys.readouterr().err
