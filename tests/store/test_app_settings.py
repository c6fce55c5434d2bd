import pytest

from backend.settings import Settings, SettingsError
from backend.store import app_settings
from backend.store.app_settings import SettingsPoller, effective, load_overrides, save_override
from backend.store.tables import AppSetting


def test_overrides_are_validated_stored_and_removed(engine):
    assert save_override(engine, "retention_days", "30") == 30
    assert load_overrides(engine) == {"retention_days": 30}
    assert save_override(engine, "retention_days", " 45 ") == 45
    assert load_overrides(engine) == {"retention_days": 45}
    assert save_override(engine, "retention_days", "") is None
    assert load_overrides(engine) == {}


@pytest.mark.parametrize("name, raw, message", [
    ("retention_days", "0", "UPNEXT_RETENTION_DAYS must be between 1"),
    ("retention_days", "ten", "must be an integer"),
    ("state_mb", "-5", "UPNEXT_STATE_MB must be between 1"),
    ("database_url", "sqlite:///x.db", "cannot be changed on the admin page"),
])
def test_bad_overrides_are_refused_with_the_variable_and_range(engine, name, raw, message):
    with pytest.raises(SettingsError, match=message):
        save_override(engine, name, raw)
    assert load_overrides(engine) == {}


def test_effective_settings_apply_overrides_over_the_environment_and_skip_bad_stored_ones(engine):
    base = Settings.from_env({"UPNEXT_RETENTION_DAYS": "90", "UPNEXT_STATE_MB": "64"})
    with engine.begin() as conn:   # a value that an older version accepted, say
        conn.execute(AppSetting.__table__.insert().values(name="state_mb", value=0, updated_ms=0))
    save_override(engine, "retention_days", "7")
    eff = effective(base, load_overrides(engine))
    assert (eff.retention_days, eff.state_mb) == (7, 64)


def test_the_poller_reports_what_changed(engine):
    poller = SettingsPoller(Settings.from_env({}))
    assert poller.poll(engine)[1] == set()
    save_override(engine, "state_mb", "32")
    settings, changed = poller.poll(engine)
    assert changed == {"state_mb"} and settings.state_mb == 32
    assert poller.poll(engine)[1] == set()


def test_the_state_budget_is_resized_across_live_models(tmp_path):
    from backend.serving.registry import ModelRegistry
    from tests.kernels.random_model import save_random_gru4rec

    models = ModelRegistry(8 << 20)
    for site in (1, 2):
        models.publish(site, site, save_random_gru4rec(tmp_path / f"m{site}", 30, [8], seed=site))
    app_settings.apply_state_budget(models, 2 << 20)
    assert [models.get(s).states.budget_bytes for s in (1, 2)] == [1 << 20, 1 << 20]
    models.publish(3, 3, save_random_gru4rec(tmp_path / "m3", 30, [8], seed=3))   # later models share the new one
    assert models.get(3).states.budget_bytes == (2 << 20) // 3
