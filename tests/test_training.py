"""backend/training.py: train_bundle's blend choices (the held-out one the training runs use)."""
import json

import numpy as np
import pytest

from backend.baselines import ItemKNN
from backend.blend import CONTEXTS, WEIGHTS, Blend, aligned_neighbours, evaluate_blend
from backend.errors import UpnextError
from backend.gru4rec.data import align_to_items
from backend.gru4rec.params import parse_params
from backend.gru4rec.weights import load_model
from backend.session_data import SessionData
from backend.training import train_bundle

PARAMS = "layers=16,n_epochs=2,batch_size=16,n_sample=32,loss=cross-entropy,learning_rate=0.1"


def _data(seed: int, n: int) -> SessionData:
    """Sessions that walk a ring of 60 items (mostly +1, sometimes +2): item-to-item carries real signal."""
    rng = np.random.default_rng(seed)
    sessions = []
    for length in rng.integers(3, 9, n):
        item = int(rng.integers(60))
        walk = [item]
        for _ in range(length - 1):
            item = (item + int(rng.choice([1, 2], p=[0.7, 0.3]))) % 60
            walk.append(item)
        sessions.append([f"i{i}" for i in walk])
    return SessionData.from_sessions(sessions)


def test_the_heldout_choice_is_the_best_blend_on_the_test_sessions_and_is_kept(tmp_path):
    train, test = _data(0, 400), _data(1, 120)
    summary = train_bundle(train, parse_params(PARAMS), tmp_path / "b", test=test, blend="heldout")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    kept = manifest["blend"]
    assert kept["chosen"] == "held-out" and summary["blend"] == kept
    tried = {(v["weight"], v["context"]): v["served_recall@20"] for v in kept["validation"]}
    assert set(tried) == {(w, c) for c in CONTEXTS for w in WEIGHTS}
    assert tried[(kept["weight"], kept["context"])] == max(tried.values())

    # recomputed independently: the kept blend's figures on the same sessions are those reported
    knn = ItemKNN.fit(train)
    weights = load_model(tmp_path / "b")[0].folded()
    nb, nw = aligned_neighbours(knn.item_ids, knn.neighbours, knn.similarities, train.item_ids)
    again = evaluate_blend(weights, nb, nw, align_to_items(test, train.item_ids),
                           Blend(kept["weight"], kept["context"]))
    assert manifest["metrics"]["blend"]["served"]["recall@20"] == pytest.approx(again["served"]["recall@20"])
    assert round(again["served"]["recall@20"], 4) == tried[(kept["weight"], kept["context"])]


def test_choosing_on_heldout_sessions_needs_some(tmp_path):
    with pytest.raises(UpnextError, match="held-out sessions"):
        train_bundle(_data(0, 50), parse_params(PARAMS), tmp_path / "b", blend="heldout")
    assert not (tmp_path / "b").exists()
