"""The models page: train now (a real background run), progress as JSON, promote, roll back, the schedule."""
import time

import pytest

from backend.store import runs
from backend.store.schedules import get_schedule
from backend.store.sites import create_site
from backend.store.trained_models import list_models, live_models, register_model
from tests.kernels.random_model import save_random_gru4rec
from tests.support.training import TINY
from tests.support.visits import seed_visits


def _wait_for_run(admin, url, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        admin.app.state.services.admin.supervisor.check()
        run = admin.get(url).json()
        if not run["active"]:
            return run
        time.sleep(0.3)
    raise AssertionError(f"run still active: {run}")


@pytest.mark.slow
def test_train_now_then_promote_and_roll_back(admin, shop, engine, tmp_path):
    if not str(engine.url).startswith("sqlite"):
        pytest.skip("one real training run is enough; it runs on SQLite")
    base = f"/admin/sites/{shop.site_id}"
    seed_visits(engine, shop.site_id, sessions=300, days=3)
    # a model that is live before: the roll-back target
    old = register_model(engine, shop.site_id, save_random_gru4rec(tmp_path / "old", 10, [8]), "gru4rec")
    assert admin.post(f"{base}/models/{old}/promote", data={"csrf": admin.csrf}).status_code == 303

    r = admin.post(base + "/models/train", data={"csrf": admin.csrf, "preset": "", "params": TINY})
    assert r.status_code == 303 and "notice=run-started" in r.headers["location"]
    [run] = runs.list_runs(engine, shop.site_id)
    assert f'data-run-url="{base}/runs/{run.id}.json"' in admin.get(base + "/models").text
    done = _wait_for_run(admin, f"{base}/runs/{run.id}.json")
    assert done["status"] == "succeeded", done["error"]
    new = done["model_id"]
    assert live_models(engine)[shop.site_id].id == old                 # a manual run is not promoted

    page = admin.get(base + "/models").text
    assert f'id="model-{new}"' in page and "Promote" in page
    newest_day = page.split('id="newest-day"')[1].split("</section>")[0]
    assert f"#{new}" in newest_day and f"#{old}" in newest_day and "Item-kNN" in newest_day
    record = next(m for m in list_models(engine, shop.site_id) if m.id == new)
    blend = record.metrics["blend"]          # the run chose the blend's weight on its held-out day
    assert f"#{new} as gru4rec_blend" in newest_day and "chosen on this day" in newest_day
    assert f"w {blend['weight']:g} on the last {blend['context']} item" in newest_day
    assert f"{blend['served']['recall@20']:.4f}" in newest_day
    assert f"{record.metrics['recall@20']:.4f}" in page
    assert f"{record.metrics['baselines']['itemknn']['recall@20']:.4f}" in page

    assert admin.post(f"{base}/models/{new}/promote", data={"csrf": admin.csrf}).status_code == 303
    assert live_models(engine)[shop.site_id].id == new
    r = admin.post(base + "/models/rollback", data={"csrf": admin.csrf})
    assert r.status_code == 303 and f"%23{old}" in r.headers["location"]
    assert live_models(engine)[shop.site_id].id == old


def test_bad_parameters_start_nothing(admin, shop, engine):
    base = f"/admin/sites/{shop.site_id}"
    r = admin.post(base + "/models/train", data={"csrf": admin.csrf, "preset": "", "params": "layers=lots"})
    assert r.status_code == 400 and "layers" in r.text and 'value="layers=lots"' in r.text
    r = admin.post(base + "/models/train", data={"csrf": admin.csrf, "preset": "nope", "params": ""})
    assert r.status_code == 400 and "unknown preset" in r.text
    assert runs.list_runs(engine, shop.site_id) == []


def test_a_second_run_is_refused_while_one_is_active(admin, shop, engine):
    runs.create_run(engine, shop.site_id, TINY)
    r = admin.post(f"/admin/sites/{shop.site_id}/models/train", data={"csrf": admin.csrf, "params": TINY})
    assert r.status_code == 400 and "still queued" in r.text


def test_cancel_and_progress_of_a_queued_run(admin, shop, engine):
    base = f"/admin/sites/{shop.site_id}"
    run_id = runs.create_run(engine, shop.site_id, TINY)
    assert admin.get(f"{base}/runs/{run_id}.json").json()["status"] == "queued"
    other = create_site(engine, "other", [])
    assert admin.get(f"/admin/sites/{other.site_id}/runs/{run_id}.json").status_code == 404
    assert admin.post(f"/admin/sites/{other.site_id}/runs/{run_id}/cancel",
                      data={"csrf": admin.csrf}).status_code == 404
    assert admin.post(f"{base}/runs/{run_id}/cancel", data={"csrf": admin.csrf}).status_code == 303
    assert runs.get_run(engine, run_id).status == "cancelled"


def test_promoting_another_sites_model_is_refused(admin, shop, engine, tmp_path):
    other = create_site(engine, "other", [])
    foreign = register_model(engine, other.site_id, save_random_gru4rec(tmp_path / "m", 10, [8]), "gru4rec")
    r = admin.post(f"/admin/sites/{shop.site_id}/models/{foreign}/promote", data={"csrf": admin.csrf})
    assert r.status_code == 400 and "does not belong" in r.text
    r = admin.post(f"/admin/sites/{shop.site_id}/models/rollback", data={"csrf": admin.csrf})
    assert r.status_code == 400 and "no earlier live model" in r.text


def test_the_schedule_is_saved_and_checked(admin, shop, engine):
    url = f"/admin/sites/{shop.site_id}/models/schedule"
    r = admin.post(url, data={"csrf": admin.csrf, "enabled": "1", "every_hours": "12", "preset": "",
                              "params": TINY})
    assert r.status_code == 303
    sched = get_schedule(engine, shop.site_id)
    assert (sched.enabled, sched.every_hours, sched.params) == (True, 12.0, TINY)
    assert "Next run" in admin.get(f"/admin/sites/{shop.site_id}/models").text
    for data, message in (({"every_hours": "often"}, "a number of hours"), ({"every_hours": "0"}, "between"),
                          ({"params": "n_epochs=0"}, "n_epochs")):
        r = admin.post(url, data={"csrf": admin.csrf, "enabled": "1", "every_hours": "12", "params": TINY, **data})
        assert r.status_code == 400 and message in r.text, data
    assert get_schedule(engine, shop.site_id).every_hours == 12.0


def test_without_a_live_model_the_page_says_when_the_first_one_trains(admin, shop):
    html = admin.get(f"/admin/sites/{shop.site_id}/models").text
    assert 'id="first-model"' in html and "0 of 1000 sessions" in html and "trains itself at 1000" in html


def _scores(r20, mrr20, served_r20, served_mrr20, n=50):
    return {"recall@20": r20, "mrr@20": mrr20, "predictions": n,
            "served": {"recall@20": served_r20, "mrr@20": served_mrr20, "predictions": n}}


def test_both_protocols_are_shown_for_each_model_and_on_the_newest_day(admin, shop, engine, tmp_path):
    base = f"/admin/sites/{shop.site_id}"
    metrics = {**_scores(0.6111, 0.3111, 0.4222, 0.2222), "heldout": {"kind": "day", "sessions": 9},
               "baselines": {"popular": _scores(0.1333, 0.0333, 0.1444, 0.0444),
                             "itemknn": _scores(0.5555, 0.2555, 0.4666, 0.1666)}}
    model = register_model(engine, shop.site_id, save_random_gru4rec(tmp_path / "m", 10, [8]), "gru4rec",
                           metrics=metrics)
    run = runs.create_run(engine, shop.site_id, TINY)
    assert runs.mark_started(engine, run, 1, "host")
    runs.finish(engine, run, "succeeded", model_id=model, result={
        "model_id": model, "heldout": {"from": 0, "to": 86400, "sessions": 9},
        "metrics": {"gru4rec": _scores(0.6111, 0.3111, 0.4222, 0.2222), "popular": _scores(0.1, 0.01, 0.1999, 0.0199),
                    "itemknn": _scores(0.5, 0.05, 0.3888, 0.0388)}, "other_models": {}})
    page = admin.get(base + "/models").text
    table = page.split('class="models"')[1].split("</table>")[0]
    for value in ("0.6111", "0.3111", "0.4222", "0.2222", "0.1444", "0.0444", "0.4666", "0.1666"):
        assert value in table, value
    newest_day = page.split('id="newest-day"')[1].split("</section>")[0]
    assert "Served Recall@20" in newest_day
    for value in ("0.4222", "0.1999", "0.0199", "0.3888", "0.0388"):
        assert value in newest_day, value


@pytest.mark.slow
def test_tune_then_train(admin, shop, engine):
    """A tuning run (a real background process of parallel trials) shows its progress, makes its best
    parameters the schedule's, and the page then offers to train with them."""
    if not str(engine.url).startswith("sqlite"):
        pytest.skip("one real tuning run is enough; it runs on SQLite")
    base = f"/admin/sites/{shop.site_id}"
    seed_visits(engine, shop.site_id, sessions=300, days=3)
    r = admin.post(base + "/models/tune", data={"csrf": admin.csrf, "trials": "2", "fixed": "n_epochs=1,layers=16"})
    assert r.status_code == 303 and "notice=tuning-started" in r.headers["location"]
    [run] = runs.list_runs(engine, shop.site_id)
    assert (run.trigger, run.params) == ("tune", "trials=2,n_epochs=1,layers=16")
    done = _wait_for_run(admin, f"{base}/runs/{run.id}.json", timeout=180)
    assert done["status"] == "succeeded", done["error"]
    assert done["progress"]["trial"] == 2 and done["progress"]["fraction"] == 1.0
    best = runs.get_run(engine, run.id).result["tuning"]["best_params"]
    assert get_schedule(engine, shop.site_id).params == best
    page = admin.get(base + "/models").text
    offer = page.split('id="train-tuned"')[1].split("</form>")[0]
    assert f'name="params" value="{best}"' in offer
    r = admin.post(base + "/models/train", data={"csrf": admin.csrf, "params": best})
    assert r.status_code == 303
    trained = runs.list_runs(engine, shop.site_id)[0]
    assert (trained.trigger, trained.params) == ("manual", best)
    runs.request_cancel(engine, trained.id, shop.site_id)


@pytest.mark.parametrize("form, message", [
    ({"trials": "0"}, "trials: between 1 and 1000"),
    ({"trials": "lots"}, "trials: a whole number"),
    ({"trials": "3", "fixed": "layers=banana"}, "layers"),
    ({"trials": "3", "fixed": "diginetica"}, "name=value pairs only"),
])
def test_bad_tuning_requests_start_nothing(admin, shop, engine, form, message):
    r = admin.post(f"/admin/sites/{shop.site_id}/models/tune", data={"csrf": admin.csrf, **form})
    assert r.status_code == 400 and message in r.text
    assert runs.list_runs(engine, shop.site_id) == []
