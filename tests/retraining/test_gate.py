"""The promotion gate on real artifacts: a trained model against a random one, on the same held-out day."""
import json
import random

import numpy as np
import pytest

from backend.baselines.common import prediction_points
from backend.gru4rec.params import parse_params
from backend.retraining.gate import compare_on_day, decide
from backend.retraining.holdout import restrict_to_items
from backend.session_data import SessionData
from backend.training import train_bundle
from tests.kernels.random_model import save_random_gru4rec
from tests.support.training import TINY

N_ITEMS = 40


def _visits(n: int, seed: int) -> SessionData:
    rng = random.Random(seed)
    sessions = []
    for _ in range(n):
        cur, visit = rng.randrange(N_ITEMS), []
        for _ in range(rng.randrange(3, 9)):
            visit.append(f"item-{cur}")
            cur = (cur * 7 + 3) % N_ITEMS if rng.random() < 0.8 else rng.randrange(N_ITEMS)
        sessions.append(visit)
    return SessionData.from_sessions(sessions, start_times=np.arange(n, dtype=float))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    trained = root / "trained"
    train_bundle(_visits(300, 1), parse_params(TINY), trained)
    return {"trained": trained, "random": save_random_gru4rec(root / "random", N_ITEMS, [16], seed=3),
            "random_half": save_random_gru4rec(root / "half", N_ITEMS // 2, [16], seed=4),
            "day": _visits(60, 2)}


def test_the_rule_lets_ties_through():
    assert decide(0.5, 0.5) and decide(0.51, 0.5) and not decide(0.49, 0.5) and decide(0.1, None)


def test_a_better_model_passes_and_a_worse_one_does_not(models):
    better = compare_on_day(models["trained"], models["random"], 7, models["day"])
    assert better.passed and better.new > better.live and better.live_model_id == 7
    assert "no worse than" in better.reason
    worse = compare_on_day(models["random"], models["trained"], 8, models["day"])
    assert not worse.passed and worse.new < worse.live and "worse than" in worse.reason
    assert worse.predictions == better.predictions > 0


def test_both_models_are_scored_on_the_items_both_know(models):
    decision = compare_on_day(models["trained"], models["random_half"], 1, models["day"])
    half = restrict_to_items(models["day"], [f"item-{i}" for i in range(N_ITEMS // 2)])
    assert decision.predictions == len(prediction_points(half, 2)[1]) < len(prediction_points(models["day"], 2)[1])


def test_without_a_live_model_the_new_one_passes(models):
    decision = compare_on_day(models["trained"], None, None, models["day"])
    assert decision.passed and decision.live is None


def test_an_unreadable_live_model_blocks_promotion(models, tmp_path):
    decision = compare_on_day(models["trained"], tmp_path / "missing", 3, models["day"])
    assert not decision.passed and "cannot be read" in decision.reason


def test_no_prediction_to_compare_on_blocks_promotion(models):
    empty_day = SessionData.from_sessions([["item-1"], ["item-2"]], start_times=np.array([0.0, 1.0]))
    decision = compare_on_day(models["trained"], models["random"], 3, empty_day)
    assert not decision.passed and "no prediction" in decision.reason


def test_a_live_model_trained_on_the_held_out_day_is_flagged(models, tmp_path):
    import shutil

    leaky = tmp_path / "leaky"
    shutil.copytree(models["random"], leaky)
    manifest = json.loads((leaky / "manifest.json").read_text())
    manifest["data"] = {"last_time": 59.0}
    (leaky / "manifest.json").write_text(json.dumps(manifest))
    decision = compare_on_day(models["trained"], leaky, 3, models["day"])
    assert decision.live_saw_day and "optimistic" in decision.reason
    assert not compare_on_day(models["trained"], models["random"], 3, models["day"]).live_saw_day


def test_the_gate_decides_on_the_served_setting(models):
    from backend.retraining.holdout import gru4rec_metrics
    decision = compare_on_day(models["trained"], models["random"], 7, models["day"])
    new = gru4rec_metrics(models["trained"], models["day"])
    assert new["served"]["recall@20"] != new["recall@20"]      # the day has repeats: the two protocols differ
    assert decision.new == new["served"]["recall@20"] and decision.metric == "served recall@20"
    assert decision.reason.startswith("served recall@20") and "standard recall@20" in decision.reason
