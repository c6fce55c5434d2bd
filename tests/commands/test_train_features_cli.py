"""`upnext train --item-features FILE` and item features from a site's catalogue (issue 15)."""
import json

import numpy as np
import pytest

from backend.artifact import load_artifact
from backend.cli import main
from backend.gru4rec.weights import load_model
from backend.store.db import make_engine
from backend.store.items import save_items
from backend.store.sites import create_site
from tests.support.visits import insert_views

FEAT = "layers=8,batch_size=4,n_sample=16,n_epochs=1,item_features=true,id_dropout=0.3,feature_min_count=1"


def _sessions(n=80, seed=0):
    rng = np.random.default_rng(seed)
    return [[f"p{c}{k}" for k in rng.integers(0, 5, rng.integers(2, 6))] for c in rng.integers(0, 4, n)]


def _records():
    return [{"id": f"p{c}{k}", "category": f"Cat{c} > Sub{k % 2}", "title": f"Product {c} {k}",
             "price": 3.0 + c + k, "attributes": {"brand": f"B{c}"}} for c in range(4) for k in range(6)]


@pytest.fixture
def files(tmp_path):
    train = tmp_path / "train.txt"
    train.write_text("\n".join(" ".join(s) for s in _sessions()) + "\n")
    feats = tmp_path / "items.jsonl"
    feats.write_text("\n".join(json.dumps(r) for r in _records()) + "\n")
    return train, feats


def test_train_with_a_feature_file_covers_catalogue_items_without_events(files, tmp_path):
    train, feats = files
    out = tmp_path / "m"
    assert main(["train", "--data", str(train), "--item-features", str(feats), "--params", FEAT,
                 "--out", str(out)]) == 0
    weights, art = load_model(out)
    assert {"p05", "p15", "p25", "p35"} <= set(art.item_ids)        # k=5 never clicked: cold, still an item
    assert art.manifest["params"]["item_features"] is True
    assert "cat:cat0>sub1" in art.manifest["item_features"]["vocabulary"]
    assert weights.Fy.shape[1] == 8 and "features.indptr" in art.arrays
    assert art.manifest["data"]["items"] < len(art.item_ids)        # data info: the events' items


@pytest.mark.parametrize("args, message", [
    (["--params", FEAT.replace("item_features=true,", "")], "needs item_features=True"),
])
def test_feature_requests_that_cannot_work_are_refused(files, tmp_path, capsys, args, message):
    train, feats = files
    assert main(["train", "--data", str(train), "--item-features", str(feats), "--out", str(tmp_path / "m"),
                 *args]) == 1
    assert message in capsys.readouterr().err


def test_item_features_without_a_feature_source_is_refused(files, tmp_path, capsys):
    train, _ = files
    assert main(["train", "--data", str(train), "--params", FEAT, "--out", str(tmp_path / "m")]) == 1
    assert "needs item features" in capsys.readouterr().err


def test_a_sites_training_takes_features_from_its_catalogue(tmp_path, monkeypatch, sqlite_url):
    monkeypatch.setenv("UPNEXT_DATABASE_URL", sqlite_url)
    engine = make_engine(sqlite_url)
    site = create_site(engine, "shop", []).site_id
    save_items(engine, site, [{**r, "url": None, "image": None, "currency": None, "available": True}
                              for r in _records()])
    insert_views(engine, site, _sessions(60, 1))
    out = tmp_path / "site-model"
    assert main(["train", "--site", "shop", "--params", FEAT, "--out", str(out)]) == 0
    m = load_artifact(out).manifest
    assert len(m["item_ids"]) == 24 and "attr:brand=b2" in m["item_features"]["vocabulary"]
    engine.dispose()
