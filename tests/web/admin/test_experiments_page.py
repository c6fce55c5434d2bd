"""The experiments page: create (CSRF, refused input with a message), start, pause, stop, delete; the report of
traffic sent through the public API (KPI table per arm, uplift chart) and its CSV exports; names shown escaped."""
import csv
import io
import json
import time

import pytest
from sqlalchemy import func, select, update

from backend.experiments.assignment import RunningExperiment
from backend.experiments.report import CSV_COLUMNS, METRICS
from backend.publishing import publish_artifact
from backend.store.experiments import get_experiment, list_experiments
from backend.store.items import clean_item, upsert_items
from backend.store.placements import PlacementConfig, save_placement
from backend.store.tables import Experiment, ServedList
from tests.experiments.test_assignment import session_ids
from tests.kernels.random_model import save_random_gru4rec

N = 30
ARMS = {"arm0_name": "control", "arm0_algorithm": "popular", "arm0_share": "1",
        "arm1_name": "gru", "arm1_algorithm": "gru4rec_next", "arm1_share": "1"}


def new_experiment(admin, site_id, **change):
    return admin.post(f"/admin/sites/{site_id}/experiments",
                      data={"csrf": admin.csrf, "name": "gru vs popular", "placement": "next", **ARMS, **change})


def created_id(r) -> int:
    assert r.status_code == 303, r.text
    return int(r.headers["location"].split("/experiments/")[1].split("?")[0])


def started(admin, engine, site_id: int) -> int:
    """A new experiment with a known salt (the form draws a random one: assignment would vary between runs),
    started on the page."""
    exp_id = created_id(new_experiment(admin, site_id, name="A <b>bold</b> test"))
    with engine.begin() as conn:
        conn.execute(update(Experiment).where(Experiment.id == exp_id).values(salt="page-test"))
    assert admin.post(f"/admin/sites/{site_id}/experiments/{exp_id}/start",
                      data={"csrf": admin.csrf}).status_code == 303
    return exp_id


@pytest.fixture
def site_with_model(engine, shop, tmp_path, svc):
    with engine.begin() as conn:
        upsert_items(conn, shop.site_id, [clean_item({"id": f"item-{i}", "title": f"Item {i}", "url": f"/p/{i}",
                                                      "price": 10.0 + i, "currency": "EUR"}) for i in range(N)])
    save_placement(engine, shop.site_id, PlacementConfig("next", algorithm="item_to_item", n=4))
    publish_artifact(engine, shop.site_id, save_random_gru4rec(tmp_path / "m", N, [8], seed=2),
                     model_dir=tmp_path / "models")
    svc.models.sync(engine)
    svc.catalog.refresh()
    return shop


def test_create_start_pause_stop_and_the_nav(admin, shop, engine, svc):
    base = f"/admin/sites/{shop.site_id}/experiments"
    html = admin.get(base).text
    assert f'<a href="{base}" aria-current="page">Experiments</a>' in html and "No experiments yet" in html
    exp_id = created_id(new_experiment(admin, shop.site_id))
    exp = get_experiment(engine, exp_id)
    assert (exp.status, exp.placement, [(a.name, a.algorithm, a.share) for a in exp.arms]) == \
        ("draft", "next", [("control", "popular", 1), ("gru", "gru4rec_next", 1)])
    assert "gru vs popular" in admin.get(base).text
    page = admin.get(f"{base}/{exp_id}?notice=experiment-created").text
    assert "Experiment created as a draft" in page and ">draft<" in page and ">Start</button>" in page

    assert admin.post(f"{base}/{exp_id}/start", data={"csrf": admin.csrf}).status_code == 303
    assert get_experiment(engine, exp_id).status == "running"
    assert svc.experiments.running(shop.site_id, "next").id == exp_id      # this process serves it at once
    page = admin.get(f"{base}/{exp_id}").text
    assert ">Pause</button>" in page and ">Stop</button>" in page and ">Start</button>" not in page

    assert admin.post(f"{base}/{exp_id}/pause", data={"csrf": admin.csrf}).status_code == 303
    assert get_experiment(engine, exp_id).status == "paused"
    assert svc.experiments.running(shop.site_id, "next") is None
    assert admin.post(f"{base}/{exp_id}/stop", data={"csrf": admin.csrf}).status_code == 303
    assert get_experiment(engine, exp_id).status == "stopped"
    r = admin.post(f"{base}/{exp_id}/start", data={"csrf": admin.csrf})
    assert r.status_code == 409 and "cannot start experiment" in r.text
    r = admin.post(f"{base}/{exp_id}/delete", data={"csrf": admin.csrf})
    assert r.status_code == 409 and "only a draft can be deleted" in r.text


def test_a_second_running_experiment_on_a_placement_is_refused(admin, shop, engine):
    base = f"/admin/sites/{shop.site_id}/experiments"
    first = created_id(new_experiment(admin, shop.site_id, name="first"))
    second = created_id(new_experiment(admin, shop.site_id, name="second"))
    admin.post(f"{base}/{first}/start", data={"csrf": admin.csrf})
    r = admin.post(f"{base}/{second}/start", data={"csrf": admin.csrf})
    assert r.status_code == 409 and "already has a running experiment" in r.text
    assert get_experiment(engine, second).status == "draft"


def test_a_draft_can_be_deleted(admin, shop, engine):
    base = f"/admin/sites/{shop.site_id}/experiments"
    exp_id = created_id(new_experiment(admin, shop.site_id))
    r = admin.post(f"{base}/{exp_id}/delete", data={"csrf": admin.csrf})
    assert r.status_code == 303 and r.headers["location"].startswith(base + "?notice=experiment-deleted")
    assert list_experiments(engine, shop.site_id) == []
    assert admin.get(f"{base}/{exp_id}").status_code == 404


def test_bad_input_is_refused_with_a_message_and_the_form_kept(admin, shop, engine):
    cases = (({"arm1_algorithm": "magic"}, "algorithm must be one of"),
             ({"arm1_share": "-1"}, "share must be a whole number between 1 and"),
             ({"arm1_share": "0"}, "share must be a whole number between 1 and"),
             ({"arm1_share": "half"}, "the share must be a whole number"),
             ({"arm1_name": "control"}, "arm names must differ"),
             ({"arm1_name": ""}, "an experiment has 2-8 arms, got 1"),
             ({"arm1_name": "<b>x</b>"}, "arm name &#39;&lt;b&gt;x&lt;/b&gt;&#39;: 1-32 letters"),
             ({"placement": ""}, "placement: 1-64 lowercase letters"),
             ({"placement": "Next Page"}, "placement: 1-64 lowercase letters"),
             ({"name": "  "}, "name: 1-100 characters"))
    for change, message in cases:
        r = new_experiment(admin, shop.site_id, **change)
        assert r.status_code == 400 and message in r.text, (change, r.text[-2000:])
        assert 'class="error" role="alert"' in r.text and 'aria-current="page">Experiments' in r.text
    assert list_experiments(engine, shop.site_id) == []
    r = new_experiment(admin, shop.site_id, name="kept name", arm1_share="-1")
    assert 'value="kept name"' in r.text and 'value="-1"' in r.text          # what was typed stays in the form

    created_id(new_experiment(admin, shop.site_id, name="taken"))
    r = new_experiment(admin, shop.site_id, name="taken", placement="other")
    assert r.status_code == 400 and "exists already on this site" in r.text
    assert len(list_experiments(engine, shop.site_id)) == 1


def test_without_csrf_nothing_changes(admin, shop, engine):
    base = f"/admin/sites/{shop.site_id}/experiments"
    r = admin.post(base, data={"name": "x", "placement": "next", **ARMS})
    assert r.status_code == 403 and list_experiments(engine, shop.site_id) == []
    exp_id = created_id(new_experiment(admin, shop.site_id))
    for action in ("start", "delete"):
        r = admin.post(f"{base}/{exp_id}/{action}", data={"csrf": "forged"})
        assert r.status_code == 403
    assert get_experiment(engine, exp_id).status == "draft"


def test_unknown_experiments_sites_and_actions_are_not_found(admin, shop, engine):
    from backend.store.sites import create_site

    base = f"/admin/sites/{shop.site_id}/experiments"
    exp_id = created_id(new_experiment(admin, shop.site_id))
    other = create_site(engine, "other", [])
    for url in (f"{base}/{exp_id + 1}", f"{base}/{exp_id + 1}.csv", f"/admin/sites/{other.site_id}/experiments/"
                f"{exp_id}", f"/admin/sites/{shop.site_id + 9}/experiments"):
        assert admin.get(url).status_code == 404, url
    assert admin.post(f"{base}/{exp_id + 1}/start", data={"csrf": admin.csrf}).status_code == 404
    r = admin.post(f"/admin/sites/{other.site_id}/experiments/{exp_id}/start", data={"csrf": admin.csrf})
    assert r.status_code == 404 and get_experiment(engine, exp_id).status == "draft"
    r = admin.post(f"{base}/{exp_id}/explode", data={"csrf": admin.csrf})
    assert r.status_code == 404 and get_experiment(engine, exp_id).status == "draft"
    r = admin.get(f"{base}/{exp_id}.csv?series=%22%3E%3Cx")
    assert r.status_code == 400 and "series: one of clicks" in r.text and "content-disposition" not in r.headers


def test_names_are_shown_escaped(admin, shop):
    base = f"/admin/sites/{shop.site_id}/experiments"
    exp_id = created_id(new_experiment(admin, shop.site_id, name="<script>alert(1)</script>"))
    for html in (admin.get(base).text, admin.get(f"{base}/{exp_id}").text):
        assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def _traffic(admin, shop, sessions: list[str]) -> dict:
    """Two recommendation requests per session; every list is seen; arm ``gru`` clicks on both lists, the control
    on the first list of two sessions in three; each click is followed by a cart and a 20 EUR purchase (no rec:
    the last click decides). Returns the clicks sent per arm."""
    clicks = {"control": 0, "gru": 0}
    for k, session in enumerate(sessions):
        events = []
        for j in range(2):
            r = admin.get("/v1/recommendations", params={"key": shop.publishable_key, "placement": "next",
                                                        "session": session, "item": "item-3", "history": "item-3"})
            body = r.json()
            assert r.status_code == 200 and body["experiment"]["arm"] == body["arm"]
            first = body["items"][0]["id"]
            events.append({"type": "rec_impression", "rec": body["rec"], "items": [i["id"] for i in body["items"]]})
            if body["arm"] == "gru" or (j == 0 and k % 3):
                clicks[body["arm"]] += 1
                events += [{"type": "rec_click", "rec": body["rec"], "item": first},
                           {"type": "cart", "item": first},
                           {"type": "purchase", "item": first, "value": 20.0, "currency": "EUR"}]
        r = admin.post("/v1/events", content=json.dumps({"key": shop.publishable_key, "session": session,
                                                         "events": events}))
        assert r.status_code == 202, r.text
    return clicks


def _wait_for_served_lists(engine, count: int) -> None:
    deadline = time.monotonic() + 10
    while True:                              # served lists are written in the background (50 ms batches)
        with engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(ServedList)).scalar()
        if n >= count or time.monotonic() > deadline:
            assert n == count
            return
        time.sleep(0.05)


def test_the_report_of_real_traffic_and_its_csv(admin, site_with_model, engine):
    shop = site_with_model
    base = f"/admin/sites/{shop.site_id}/experiments"
    exp_id = started(admin, engine, shop.site_id)
    exp = get_experiment(engine, exp_id)
    sessions = session_ids(40, 5)
    assignment = RunningExperiment(exp.id, exp.salt, exp.arms)
    per_arm = {a: sum(assignment.assign(s).name == a for s in sessions) for a in ("control", "gru")}
    assert min(per_arm.values()) >= 5
    clicks = _traffic(admin, shop, sessions)
    _wait_for_served_lists(engine, 2 * len(sessions))

    html = admin.get(f"{base}/{exp_id}?fresh=1").text
    assert "A &lt;b&gt;bold&lt;/b&gt; test" in html and "<b>bold</b>" not in html
    kpis = html[html.index('<table class="kpis">'):]
    kpis = kpis[:kpis.index("</table>")]
    assert ">control</th>" in kpis and ">gru</th>" in kpis and "Clicks per 1,000 requests" in kpis
    control_rate, gru_rate = 1000 * clicks["control"] / (2 * per_arm["control"]), 1000.0
    assert f"{control_rate:.2f}" in kpis and f"{gru_rate:.2f}" in kpis
    assert f"{100 * (gru_rate / control_rate - 1):+.1f}%" in kpis            # the uplift over the control
    assert '<svg class="uplift"' in html and '<polyline class="line arm-1"' in html
    assert f"{per_arm['control']}</td>" in html                              # sessions per arm

    r = admin.get(f"{base}/{exp_id}.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert f'filename="experiment-{exp_id}-report.csv"' in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 1 + 2 * len(METRICS)
    by = {(row[3], row[8]): dict(zip(CSV_COLUMNS, row)) for row in rows[1:]}
    for arm in ("control", "gru"):
        assert int(by[arm, "clicks"]["sessions"]) == per_arm[arm]
        assert int(by[arm, "clicks"]["requests"]) == 2 * per_arm[arm]
        assert float(by[arm, "clicks"]["total"]) == clicks[arm]
        assert float(by[arm, "revenue"]["total"]) == 20.0 * clicks[arm]
    assert by["control", "clicks"]["uplift"] == "" and float(by["gru", "clicks"]["uplift"]) > 0

    r = admin.get(f"{base}/{exp_id}.csv?series=revenue")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:3] == ["day", "metric", "arm"] and len(rows) == 1 + 2
    assert {row[2] for row in rows[1:]} == {"control", "gru"} and {row[1] for row in rows[1:]} == {"revenue"}


def test_the_report_is_reused_for_a_minute_unless_asked_fresh(admin, site_with_model, engine):
    shop = site_with_model
    base = f"/admin/sites/{shop.site_id}/experiments"
    exp_id = started(admin, engine, shop.site_id)
    assert "no uplift yet" in admin.get(f"{base}/{exp_id}").text
    sessions = session_ids(20, 6)
    _traffic(admin, shop, sessions)
    _wait_for_served_lists(engine, 2 * len(sessions))
    assert "no uplift yet" in admin.get(f"{base}/{exp_id}").text             # the cached report
    assert '<svg class="uplift"' in admin.get(f"{base}/{exp_id}?fresh=1").text


def test_arms_may_set_the_placements_controls(admin, shop, engine):
    r = new_experiment(admin, shop.site_id, arm0_algorithm="gru4rec_next", arm1_settings='{"diversity": 0.3}')
    exp = get_experiment(engine, created_id(r))
    assert [(a.algorithm, dict(a.overrides)) for a in exp.arms] == [("gru4rec_next", {}),
                                                                     ("gru4rec_next", {"diversity": 0.3})]
    page = admin.get(f"/admin/sites/{shop.site_id}/experiments/{exp.id}").text
    assert "gru4rec_next (diversity=0.3)" in page
    for settings, message in (("{not json", "settings must be JSON"), ('{"n": 3}', "n: unknown field"),
                              ('{"diversity": 2}', "diversity: a number from 0")):
        r = new_experiment(admin, shop.site_id, name=f"bad {message}", arm1_settings=settings)
        assert r.status_code == 400 and "arm gru: settings" in r.text and message in r.text, settings
