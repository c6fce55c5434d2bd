"""A training run (backend/retraining/training_run.py) with item features takes them from the site's catalogue."""
from backend.gru4rec.weights import load_model
from backend.retraining.training_run import Heartbeat, train_and_register
from backend.store import runs
from backend.store.sites import create_site
from backend.store.trained_models import list_models
from tests.support.visits import seed_visits


def test_a_run_with_item_features_trains_every_catalogue_item_with_its_features(engine, tmp_path):
    site = create_site(engine, "shop", []).site_id
    seed_visits(engine, site, sessions=120, items=30)
    run_id = runs.create_run(engine, site, "layers=8,batch_size=8,n_sample=16,n_epochs=1,item_features=true,"
                                           "id_dropout=0.3,feature_min_count=1")
    result = train_and_register(engine, runs.get_run(engine, run_id), tmp_path / "out", Heartbeat(engine, run_id))
    stored = [m for m in list_models(engine, site) if m.id == result["model_id"]][0]
    weights, art = load_model(stored.path)
    assert weights.Fy is not None and len(art.item_ids) == 30
    assert "cat:cat-1" in art.manifest["item_features"]["vocabulary"]
    # the blend's weight is chosen on the held-out day, in the model's item space (catalogue items included)
    assert art.manifest["blend"]["chosen"] == "held-out" and art.manifest["blend"]["weight"] >= 0
    assert 0 <= stored.metrics["blend"]["served"]["recall@20"] <= 1
