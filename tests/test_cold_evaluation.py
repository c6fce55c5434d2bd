"""Cold-start evaluation (backend/cold_evaluation.py): the split, the ranks, the baselines and the models on tiny data."""
import json

import numpy as np
import pytest

from backend import cold_evaluation as cold_start
from backend.baselines.common import prediction_points
from backend.baselines.itemknn import ItemKNN
from backend.baselines.vsknn import VSKNN
from backend.cli import main
from backend.gru4rec.params import Hyperparameters
from backend.gru4rec.weights import gru_step
from backend.session_data import SessionData

N_CAT, PER_CAT = 5, 12


def _data(seed=0, users=300):
    rng = np.random.default_rng(seed)
    seqs = []
    for u in range(users):
        c = rng.integers(N_CAT)
        seqs.append([f"{c}-{k}" for k in rng.integers(0, PER_CAT, rng.integers(4, 8))])
    records = [{"id": f"{c}-{k}", "attributes": {"attr": [f"c{c}", f"b{c}{k % 3}"]}}
               for c in range(N_CAT) for k in range(PER_CAT)]
    return seqs, records


def test_split_holds_items_out_of_training_only():
    seqs, records = _data()
    split = cold_start.cold_split(seqs, [r["id"] for r in records], 0.2, seed=1)
    assert split.cold.sum() == 12 and len(split.targets) == len(seqs)
    cold_ids = {split.item_ids[i] for i in np.flatnonzero(split.cold)}
    assert not cold_ids & set(split.train.item_ids)
    assert split.item_ids[split.targets[0]] == seqs[0][-1] and len(split.contexts[0]) == len(seqs[0]) - 1
    with pytest.raises(cold_start.UpnextError):
        cold_start.cold_split(seqs, [], 1.0, seed=1)


def test_ranks_count_ties_against_the_target_and_exclude_the_context():
    seqs = [["a", "b", "c"], ["b", "c", "a"]]
    split = cold_start.cold_split(seqs, ["a", "b", "c", "d"], 0.0, seed=0)
    flat = cold_start.Scorer("flat", lambda users: np.zeros((len(users), 4), np.float32))
    res = cold_start.evaluate_scorer(flat, split)
    # two context items excluded: the target ties with the one item left, and the tie counts against it
    assert res["all"]["hr@10"] == 1.0 and res["all"]["mrr@20"] == pytest.approx(0.5)
    prefer = cold_start.Scorer("ctx", lambda users: np.tile(np.array([0, 5, 5, 0], np.float32), (len(users), 1)))
    res = cold_start.evaluate_scorer(prefer, split)
    # user 0: a, b are context, target c (5) first; user 1: b, c are context (their 5s never count), a ties with d
    assert res["all"]["mrr@20"] == pytest.approx(0.75)


def test_features_rank_cold_items_that_an_id_model_cannot():
    seqs, records = _data()
    params = Hyperparameters(layers=(16,), batch_size=16, n_sample=32, sample_store_size=3200, n_epochs=3,
                             learning_rate=0.1, feature_min_count=1)
    res = {r["model"]: r for r in cold_start.run(seqs, records, params, cold_fraction=0.2, seed=2)}
    assert res["gru4rec"]["cold"]["hr@20"] == 0.0 and res["gru4rec"]["cold_in_top20"] == 0.0
    for name in ("gru4rec+features", "features-only", "content-knn", "popular-in-category"):
        assert res[name]["cold"]["hr@20"] > 0.2, name           # 1 / 12 in-category items by chance: < 0.1 of 60
    assert res["gru4rec+features"]["cold_in_top20"] > 0.5


def test_the_command_reads_s3rec_files(tmp_path, capsys):
    seqs, records = _data(users=80)
    (tmp_path / "seq.txt").write_text("".join(f"{u} {' '.join(s)}\n" for u, s in enumerate(seqs)))
    (tmp_path / "attrs.json").write_text(json.dumps({r["id"]: r["attributes"]["attr"] for r in records}))
    assert main(["cold-start", "--sequences", str(tmp_path / "seq.txt"), "--item-features",
                 str(tmp_path / "attrs.json"), "--params", "layers=8,batch_size=8,n_sample=16,n_epochs=1",
                 "--models", "content-knn,gru4rec+features", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in out] == ["content-knn", "gru4rec+features"]
    assert main(["cold-start", "--sequences", str(tmp_path / "seq.txt"), "--item-features",
                 str(tmp_path / "attrs.json"), "--params", "layers=8", "--models", "magic"]) == 1
    assert "unknown model" in capsys.readouterr().err


def test_a_feature_models_context_is_fed_with_its_item_vectors():
    """The scorer fed the ID part alone (zero in a features-only model) as the context: every user got the same
    scores."""
    seqs, records = _data(users=60)
    split = cold_start.cold_split(seqs, [r["id"] for r in records], 0.2, seed=3)
    from backend.gru4rec.trainer import train
    from backend.item_features import ItemFeatures, with_catalogue_items
    full = with_catalogue_items(split.train, split.item_ids)
    p = Hyperparameters(layers=(8,), batch_size=8, n_sample=16, sample_store_size=160, n_epochs=1,
                        item_features=True, id_dropout=1.0, feature_min_count=1)
    w = train(full, p, features=ItemFeatures.build(records)).weights
    scores = cold_start.gru4rec_scorer("f", w, list(full.item_ids), split).fn(np.arange(3))
    where = {i: k for k, i in enumerate(full.item_ids)}
    to_model = np.array([where[i] for i in split.item_ids])
    state = np.zeros((1, 8), np.float32)
    for item in split.contexts[0]:                       # user 0 step by step, the inputs = ID + features rows
        state = gru_step(w.folded(), to_model[[item]], [state])[-1]
    expected = state[0] @ w.item_vectors()[to_model].T + w.By[to_model]
    np.testing.assert_allclose(scores[0], expected, rtol=1e-4, atol=1e-5)


def _kernel_rank(scores, target):
    """The baselines' conservative rank: items scored >= the target (itself included), n_items if it scored 0."""
    return int((scores >= scores[target]).sum()) if scores[target] > 0 else len(scores)



@pytest.mark.parametrize("baseline", ["item-knn", "v-sknn"])
def test_session_baselines_score_as_their_kernels_rank(baseline):
    """The leave-one-out scorers of item-kNN and V-SKNN rank each user's target exactly as the baselines' own
    kernels rank the same prefix (those users whose items the model all knows)."""
    seqs, _ = _data(users=120)
    seqs = [s + s[:2] for s in seqs]                  # repeated items: V-SKNN weighs an item by its latest place
    split = cold_start.cold_split(seqs, [], 0.0, seed=0)
    if baseline == "item-knn":
        model = ItemKNN.fit(split.train, k=10)
        scorer = cold_start.itemknn_scorer(model, split)
    else:
        model = VSKNN.fit(split.train, k=7, sample_size=40)
        scorer = cold_start.vsknn_scorer(model, split)
    index = {str(i): k for k, i in enumerate(model.item_ids)}
    users = [u for u, seq in enumerate(seqs) if all(i in index for i in seq)]
    assert len(users) > 50
    test = SessionData.from_sessions([[index[i] for i in seqs[u]] for u in users], item_ids=model.item_ids)
    starts, targets = prediction_points(test, 2)
    last = np.isin(targets, test.offsets[1:] - 1)         # each user's last item
    expected, _ = model.rank_pairs(test, first_target=2)
    scores = scorer.fn(np.array(users))
    got = [_kernel_rank(scores[k], split.targets[u]) for k, u in enumerate(users)]
    assert got == expected[last].tolist()
    assert min(got) < len(split.item_ids)              # some targets are found


def test_session_baselines_cannot_rank_cold_items():
    seqs, records = _data()
    params = Hyperparameters(layers=(8,), n_epochs=1)
    res = {r["model"]: r for r in cold_start.run(seqs, records, params, cold_fraction=0.2, seed=2,
                                                 models=("item-knn", "v-sknn"))}
    for name in ("item-knn", "v-sknn"):
        assert res[name]["cold"]["targets"] > 0 and res[name]["cold"]["hr@20"] == 0.0
        assert res[name]["cold_in_top20"] == 0.0 and res[name]["warm"]["hr@20"] > 0.2, name
