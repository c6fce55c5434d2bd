"""Batched evaluation equals a plain one-session-at-a-time transcription of spec §6."""
import subprocess
import sys

import numpy as np
import pytest

from backend.gru4rec.data import align_to_items
from backend.gru4rec.evaluation import evaluate_gru4rec, evaluate_gru4rec_both, gru4rec_rank_pairs, gru4rec_ranks
from backend.gru4rec.ranking_metrics import HIDDEN_RANK, metrics_from_ranks
from backend.gru4rec.weights import gru_step, init_weights, load_model, save_model
from backend.session_data import SessionData
from backend.settings import REPO_ROOT

N_ITEMS = 30


def _weights(mode="shared", layers=(6, 5), seed=0):
    w = init_weights(N_ITEMS, layers, mode, 4 if mode == "separate" else 0, np.random.default_rng(seed))
    w.By[:] = np.random.default_rng(seed + 1).normal(0, 0.5, N_ITEMS)
    return w


def _test_sessions(seed=0):
    rng = np.random.default_rng(seed)
    return SessionData.from_sessions([rng.integers(0, N_ITEMS, n).tolist() for n in rng.integers(0, 7, 25)],
                                     item_ids=np.array([str(i) for i in range(N_ITEMS)], dtype=object))


def _naive_ranks(w, test, first_target, served=False):
    ranks = []
    for s in range(test.n_sessions):
        items = test.session(s)
        states = [np.zeros((1, h), np.float32) for h in w.sizes]     # zero at the start of each session
        for p in range(len(items) - 1):
            states = gru_step(w, items[p:p + 1], states)
            if p + 2 < first_target:
                continue
            scores = (states[-1] @ w.Wy.T + w.By)[0]
            if served:                  # the placement's view: seen items never shown, a seen target a miss
                seen = np.unique(items[:p + 1])
                if items[p + 1] in seen:
                    ranks.append(HIDDEN_RANK)
                    continue
                keep = np.ones(len(scores), bool)
                keep[seen] = False
                ranks.append(int((scores[keep] >= scores[items[p + 1]]).sum()))
                continue
            ranks.append(int((scores >= scores[items[p + 1]]).sum()))
    return np.array(ranks)


@pytest.mark.parametrize("mode", ["shared", "separate", "onehot"])
@pytest.mark.parametrize("batch_size", [1, 4, 256])
def test_batched_ranks_equal_one_session_at_a_time(mode, batch_size):
    w, test = _weights(mode), _test_sessions()
    got = gru4rec_ranks(w, test, batch_size=batch_size)
    expected = _naive_ranks(w, test, 2)
    assert len(got) == len(expected) == int(np.maximum(test.lengths - 1, 0).sum())
    np.testing.assert_array_equal(np.sort(got), np.sort(expected))


@pytest.mark.parametrize("batch_size", [1, 4, 256])
def test_served_ranks_leave_out_seen_items_and_miss_hidden_targets(batch_size):
    w, test = _weights(), _test_sessions(2)
    got = gru4rec_ranks(w, test, batch_size=batch_size, served=True)
    expected = _naive_ranks(w, test, 2, served=True)
    np.testing.assert_array_equal(np.sort(got), np.sort(expected))
    assert (got == HIDDEN_RANK).sum() > 0                       # this data has repeats: they are misses
    standard = gru4rec_ranks(w, test, batch_size=batch_size)
    shown = got != HIDDEN_RANK
    assert (got[shown] <= standard[shown]).all() and (got[shown] < standard[shown]).any()
    m = metrics_from_ranks(got)
    assert m["recall@20"] <= (shown.mean())


def test_both_protocols_in_one_pass_equal_each_alone():
    w, test = _weights(), _test_sessions(3)
    standard, served = gru4rec_rank_pairs(w, test, batch_size=4)
    np.testing.assert_array_equal(standard, gru4rec_ranks(w, test, batch_size=4))
    np.testing.assert_array_equal(served, gru4rec_ranks(w, test, batch_size=4, served=True))
    both = evaluate_gru4rec_both(w, test)
    assert {k: v for k, v in both.items() if k != "served"} == evaluate_gru4rec(w, test)
    assert both["served"] == evaluate_gru4rec(w, test, served=True)


def test_first_target_skips_early_positions():
    w, test = _weights(), _test_sessions(1)
    got = gru4rec_ranks(w, test, first_target=3)
    expected = _naive_ranks(w, test, 3)
    assert len(got) == int(np.maximum(test.lengths - 2, 0).sum())
    np.testing.assert_array_equal(np.sort(got), np.sort(expected))
    with pytest.raises(ValueError):
        gru4rec_ranks(w, test, first_target=1)


def test_metrics_and_unknown_test_items(tmp_path):
    w = _weights()
    raw = SessionData.from_sessions([["3", "new", "4", "5"], ["new", "7"], ["8", "9"]])
    test = align_to_items(raw, [str(i) for i in range(N_ITEMS)])
    m = evaluate_gru4rec(w, test)
    assert m["predictions"] == 3                   # 3->4, 4->5, 8->9: "new" is dropped, "7" is left alone
    assert m == pytest.approx(metrics_from_ranks(_naive_ranks(w, test, 2)))


def test_artifact_round_trip_and_loading_without_torch(tmp_path):
    w = _weights("separate")
    path = save_model(tmp_path / "model", w, params={"loss": "bpr-max"}, item_ids=[f"i{k}" for k in range(N_ITEMS)],
                      support=np.arange(N_ITEMS), data={"sessions": 3, "events": 9}, metrics={"recall@20": 0.5})
    loaded, art = load_model(path)
    assert art.kind == "upnext-gru4rec" and art.manifest["embedding"] == "separate"
    assert art.manifest["layers"] == [6, 5] and art.item_ids[2] == "i2" and art.manifest["support"][3] == 3
    for name, arr in w.arrays().items():
        np.testing.assert_array_equal(loaded.arrays()[name], arr)
    code = ("import sys; from backend.gru4rec.weights import load_model; from backend.gru4rec.evaluation import "
            "evaluate_gru4rec; from backend.gru4rec.data import read_sessions; "
            f"w, a = load_model({str(path)!r}); assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
