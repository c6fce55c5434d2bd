from backend.clock import now_ms
from backend.retraining.first_model import RETRY_MS, first_model_state, start_first_models
from backend.retraining.scheduler import save_schedule
from backend.settings import Settings
from backend.store import runs
from backend.store.trained_models import promote, register_model
from tests.retraining.test_scheduler import RecordingSupervisor
from tests.support.visits import seed_visits


def settings(n: int = 50) -> Settings:
    return Settings.from_env({}, first_model_sessions=n, first_model_params="layers=16,n_epochs=1")


def test_a_site_without_model_starts_its_first_run_once_it_has_enough_sessions(engine, site, tmp_path):
    sup = RecordingSupervisor(engine)
    seed_visits(engine, site.site_id, sessions=40)
    state = first_model_state(engine, settings(), site.site_id)
    assert (state.state, state.sessions, state.needed) == ("collecting", 40, 50)
    assert "40 of 50 sessions" in state.message
    assert start_first_models(engine, sup, settings()) == []
    seed_visits(engine, site.site_id, sessions=20, seed=1, catalog=False)
    assert first_model_state(engine, settings(), site.site_id).state == "due"
    [run_id] = start_first_models(engine, sup, settings())
    assert sup.started == [(site.site_id, "layers=16,n_epochs=1", "first_model", True)]    # through the gate
    assert first_model_state(engine, settings(), site.site_id).state == "training"
    assert start_first_models(engine, sup, settings()) == []         # one active run per site
    runs.finish(engine, run_id, "failed", error="out of memory")
    state = first_model_state(engine, settings(), site.site_id)
    assert state.state == "retry_wait" and "out of memory" in state.message
    assert start_first_models(engine, sup, settings()) == []
    assert start_first_models(engine, sup, settings(), now=now_ms() + RETRY_MS + 1000) != []   # tried again


def test_a_live_model_or_a_zero_setting_stops_it_and_a_schedule_gives_the_params(engine, site, tmp_path):
    sup = RecordingSupervisor(engine)
    seed_visits(engine, site.site_id, sessions=60)
    assert start_first_models(engine, sup, settings(0)) == []
    assert first_model_state(engine, settings(0), site.site_id).state == "off"
    save_schedule(engine, site.site_id, enabled=False, every_hours=24, params="layers=8")
    start_first_models(engine, sup, settings())
    assert sup.started[-1][1] == "layers=8"
    other = register_model(engine, site.site_id, tmp_path, "gru4rec")
    runs.finish(engine, runs.active_run(engine, site.site_id).id, "succeeded", model_id=other)
    promote(engine, site.site_id, other)
    assert first_model_state(engine, settings(), site.site_id).state == "live"
    assert start_first_models(engine, sup, settings(), now=now_ms() + 2 * RETRY_MS) == []
