"""Experiments in the store: validation, life cycle, the one-running-experiment rule (enforced by the database,
on SQLite and PostgreSQL), the in-memory directory serving uses, and the migration's way back."""
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from backend.experiments.directory import ExperimentDirectory
from backend.store.db import alembic_config, current_revision, head_revision, migrate
from backend.store.experiments import (Arm, ExperimentError, change_status, create_experiment, delete_experiment,
                                       get_experiment, list_experiments, running_experiments, set_arms)
from backend.store.sites import create_site
from backend.store.tables import Experiment

ARMS = [Arm("control", "popular"), Arm("gru", "gru4rec_next")]


@pytest.fixture
def site(engine):
    return create_site(engine, "shop", []).site_id


def test_create_list_and_life_cycle(engine, site):
    exp = create_experiment(engine, site, "product-page", "GRU vs popular", ARMS)
    assert exp.status == "draft" and exp.control.name == "control" and len(exp.salt) == 32
    assert exp.started_ms is None
    running = change_status(engine, exp.id, "start")
    assert running.status == "running" and running.started_ms is not None
    paused = change_status(engine, exp.id, "pause")
    assert paused.status == "paused"
    again = change_status(engine, exp.id, "start")
    assert again.started_ms == running.started_ms           # the first start is kept
    stopped = change_status(engine, exp.id, "stop")
    assert stopped.status == "stopped" and stopped.stopped_ms >= stopped.started_ms
    with pytest.raises(ExperimentError, match="cannot start experiment .*: it is stopped"):
        change_status(engine, exp.id, "start")
    assert [e.id for e in list_experiments(engine, site)] == [exp.id]
    assert list_experiments(engine, site, "home") == []


def test_only_one_running_experiment_per_placement(engine, site):
    first = create_experiment(engine, site, "product-page", "first", ARMS)
    second = create_experiment(engine, site, "product-page", "second", ARMS)
    other_placement = create_experiment(engine, site, "home", "elsewhere", ARMS)
    change_status(engine, first.id, "start")
    with pytest.raises(ExperimentError, match="already has a running experiment \\('first'"):
        change_status(engine, second.id, "start")
    assert get_experiment(engine, second.id).status == "draft"
    change_status(engine, other_placement.id, "start")                  # another placement: fine
    change_status(engine, first.id, "pause")
    change_status(engine, second.id, "start")                           # the placement is free again
    with pytest.raises(ExperimentError, match="already has a running experiment"):
        change_status(engine, first.id, "start")


def test_the_database_itself_refuses_a_second_running_experiment(engine, site):
    # not just the code path above: a raw insert by any other process hits the partial unique index
    create_experiment(engine, site, "product-page", "first", ARMS)
    row = {"site_id": site, "placement": "product-page", "name": "raw", "salt": "s", "arms": [],
           "created_ms": 1, "updated_ms": 1}
    with engine.begin() as conn:
        conn.execute(insert(Experiment), [{**row, "status": "running"}, {**row, "status": "paused"},
                                          {**row, "status": "paused"}])
    with pytest.raises(IntegrityError):
        with engine.begin() as conn:
            conn.execute(insert(Experiment), [{**row, "status": "running"}])


@pytest.mark.parametrize("arms, message", [
    ([Arm("only", "popular")], "2-8 arms"),
    ([Arm(f"a{k}", "popular") for k in range(9)], "2-8 arms"),
    ([Arm("a", "popular"), Arm("a", "gru4rec_next")], "names must differ"),
    ([Arm("a", "popular"), Arm("b", "magic")], "algorithm must be one of"),
    ([Arm("a", "popular"), Arm("b b", "popular")], "arm name"),
    ([Arm("a", "popular", 0), Arm("b", "popular")], "share must be"),
    ([Arm("a", "popular", 1.5), Arm("b", "popular")], "share must be"),
    ([Arm("a", "popular"), Arm("b", "holdout", 1, (("diversity", 0.3),))], "a holdout shows nothing"),
])
def test_bad_arms_are_refused(engine, site, arms, message):
    with pytest.raises(ExperimentError, match=message):
        create_experiment(engine, site, "product-page", "x", arms)


@pytest.mark.parametrize("placement, name, salt, message", [
    ("Product Page", "x", None, "placement"), ("p", "", None, "name"), ("p", "x" * 101, None, "name"),
    ("p", "x", "é" * 33, "salt"),
])
def test_bad_settings_are_refused(engine, site, placement, name, salt, message):
    with pytest.raises(ExperimentError, match=message):
        create_experiment(engine, site, placement, name, ARMS, salt=salt)


def test_arms_change_only_in_draft_and_only_drafts_are_deleted(engine, site):
    exp = create_experiment(engine, site, "p", "x", ARMS)
    changed = set_arms(engine, exp.id, [*ARMS, Arm("none", "holdout", 2)])
    assert [a.name for a in changed.arms] == ["control", "gru", "none"] and changed.arms[2].share == 2
    change_status(engine, exp.id, "start")
    with pytest.raises(ExperimentError, match="only a draft's arms can change"):
        set_arms(engine, exp.id, ARMS)
    with pytest.raises(ExperimentError, match="only a draft can be deleted"):
        delete_experiment(engine, exp.id)
    draft = create_experiment(engine, site, "p", "y", ARMS)
    delete_experiment(engine, draft.id)
    with pytest.raises(ExperimentError, match="no experiment"):
        get_experiment(engine, draft.id)
    with pytest.raises(ExperimentError, match="action must be"):
        change_status(engine, exp.id, "resume")


def test_directory_caches_running_experiments_and_sees_changes(engine, site):
    directory = ExperimentDirectory(engine, refresh_s=3600)
    exp = create_experiment(engine, site, "p", "x", ARMS, salt="fixed")
    assert directory.running(site, "p") is None
    change_status(engine, exp.id, "start")
    assert directory.running(site, "p") is None                       # cached
    directory.invalidate(site)
    running = directory.running(site, "p")
    assert running.id == exp.id and running.salt == "fixed" and [a.name for a in running.arms] == ["control", "gru"]
    assert directory.running(site, "other") is None
    change_status(engine, exp.id, "pause")
    directory.invalidate()
    assert directory.running(site, "p") is None


def test_directory_sees_changes_at_its_background_refresh_only(engine, site):
    directory = ExperimentDirectory(engine, refresh_s=0.0)
    exp = create_experiment(engine, site, "p", "x", ARMS)
    assert directory.running(site, "p") is None
    change_status(engine, exp.id, "start")
    assert directory.running(site, "p") is None           # a lookup never reads the database
    directory.refresh()                                     # the background task (services.py)
    assert directory.running(site, "p").id == exp.id


def test_running_experiments_are_those_of_the_site_with_status_running(engine, site):
    running = create_experiment(engine, site, "p", "x", ARMS)
    change_status(engine, running.id, "start")
    paused = create_experiment(engine, site, "q", "y", ARMS)
    change_status(engine, paused.id, "start")
    change_status(engine, paused.id, "pause")
    create_experiment(engine, site, "r", "z", ARMS)
    other = create_site(engine, "other", []).site_id
    change_status(engine, create_experiment(engine, other, "p", "x", ARMS).id, "start")
    assert [(e.id, e.placement, e.arms) for e in running_experiments(engine, site)] == [(running.id, "p", tuple(ARMS))]


def test_migration_downgrades_and_upgrades_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate(url)
    before = ScriptDirectory.from_config(alembic_config(url)).get_revision("0004").down_revision
    command.downgrade(alembic_config(url), "0004-1")
    assert current_revision(url) == before
    assert migrate(url) == head_revision()


def test_a_name_is_used_once_per_site(engine, site):
    create_experiment(engine, site, "product-page", "GRU vs popular", ARMS)
    with pytest.raises(ExperimentError, match="named 'GRU vs popular' exists already on this site"):
        create_experiment(engine, site, "home", "  GRU vs popular ", ARMS)
    other = create_site(engine, "video", []).site_id
    assert create_experiment(engine, other, "product-page", "GRU vs popular", ARMS).name == "GRU vs popular"


def test_arms_may_compare_two_settings_of_one_algorithm(engine, site):
    from backend.store.placements import controls_from_json
    from backend.store.placement_rules import rule_from_text
    arms = [Arm("plain", "gru4rec_next"),
            Arm("diverse", "gru4rec_next", 1, controls_from_json({"diversity": 0.3, "max_per_category": 2})),
            Arm("rules", "gru4rec_next", 1, controls_from_json(
                {"rules": [{"field": "category", "op": "not_in", "values": ["gifts"]}]}))]
    exp = create_experiment(engine, site, "product-page", "diversity", arms)
    got = get_experiment(engine, exp.id)
    assert got.arms == tuple(arms)
    assert dict(got.arms[1].overrides) == {"diversity": 0.3, "max_per_category": 2}
    assert dict(got.arms[2].overrides)["rules"] == (rule_from_text("category not in gifts"),)
    assert got.as_json()["arms"][1] == {"name": "diverse", "algorithm": "gru4rec_next", "share": 1,
                                        "overrides": {"diversity": 0.3, "max_per_category": 2}}
    assert got.arms[1].describe() == "gru4rec_next (diversity=0.3, max_per_category=2)"


def test_arm_settings_are_only_the_controls_and_valid():
    from backend.store.placements import PlacementError, controls_from_json
    with pytest.raises(PlacementError, match="algorithm: unknown field"):
        controls_from_json({"algorithm": "popular"})
    with pytest.raises(PlacementError, match="diversity: a number from 0"):
        controls_from_json({"diversity": 7})
