import pytest

from backend.errors import UpnextError
from backend.store.sites import create_site
from backend.store.trained_models import list_models, live_models, promote, register_model, rollback


def test_promote_and_roll_back(engine, tmp_path, monkeypatch):
    import backend.store.trained_models as tm

    clock = iter(range(1000, 100000, 10))
    monkeypatch.setattr(tm, "now_ms", lambda: next(clock))
    site = create_site(engine, "shop", []).site_id
    other = create_site(engine, "other", []).site_id
    a = register_model(engine, site, tmp_path / "a", "gru4rec", metrics={"recall@20": 0.5})
    b = register_model(engine, site, tmp_path / "b", "gru4rec")
    c = register_model(engine, other, tmp_path / "c", "gru4rec")
    assert live_models(engine) == {}
    with pytest.raises(UpnextError):
        rollback(engine, site)
    promote(engine, site, a)
    promote(engine, site, b)
    assert live_models(engine)[site].id == b
    assert rollback(engine, site) == a
    assert live_models(engine)[site].id == a
    assert [m.live for m in list_models(engine, site)] == [False, True]
    with pytest.raises(UpnextError):
        promote(engine, site, c)
    assert list_models(engine, site)[1].metrics == {"recall@20": 0.5}
