"""Baselines against naive transcriptions of their definitions, and their artifacts."""
import numpy as np
import pytest

from backend.baselines import BASELINES, build, load_baseline
from backend.baselines.common import prediction_points
from backend.baselines.itemknn import ItemKNN
from backend.baselines.vsknn import VSKNN
from backend.gru4rec.ranking_metrics import HIDDEN_RANK
from backend.session_data import SessionData

N_ITEMS = 25


def _data(seed, n_sessions, max_len=7):
    rng = np.random.default_rng(seed)
    popular = rng.zipf(1.5, 10_000) % N_ITEMS
    sessions, k = [], 0
    for n in rng.integers(1, max_len, n_sessions):
        sessions.append(popular[k:k + n].tolist())
        k += n
    return SessionData.from_sessions(sessions, item_ids=np.array([str(i) for i in range(N_ITEMS)], dtype=object))


def _conservative_rank(scores, target):
    return int(sum(1 for s in scores if s >= scores[target]))


def _prefixes(test, first_target=2):
    for s in range(test.n_sessions):
        items = test.session(s).tolist()
        for t in range(first_target - 1, len(items)):
            yield items[:t], items[t]


def test_popularity_ranks_ties_conservatively():
    train, test = _data(0, 80), _data(1, 20)
    model = build("popular", train)
    support = np.bincount(train.items, minlength=N_ITEMS)
    expected = [_conservative_rank(support, t) for _, t in _prefixes(test)]
    assert model.ranks(test).tolist() == expected
    assert model.top(3).tolist() == np.argsort(-support, kind="stable")[:3].tolist()


def _naive_itemknn(train, k, lam, alpha):
    sets = [set(train.session(s).tolist()) for s in range(train.n_sessions)]
    supp = np.array([sum(i in s for s in sets) for i in range(N_ITEMS)], float)
    sim = np.zeros((N_ITEMS, N_ITEMS))
    for i in range(N_ITEMS):
        for j in range(N_ITEMS):
            if i != j:
                cooc = sum(i in s and j in s for s in sets)
                sim[i, j] = cooc / ((supp[i] + lam) ** alpha * (supp[j] + lam) ** (1 - alpha))
    for i in range(N_ITEMS):           # keep the k best of each row
        if (sim[i] > 0).sum() > k:
            sim[i, np.argsort(-sim[i], kind="stable")[k:]] = 0
    return sim


@pytest.mark.parametrize("k,alpha", [(100, 0.5), (4, 0.3)])
def test_itemknn_follows_the_gru4rec_paper(k, alpha):
    train, test = _data(2, 120), _data(3, 30)
    model = ItemKNN.fit(train, k=k, lam=20.0, alpha=alpha)
    sim = _naive_itemknn(train, k, 20.0, alpha)
    for i in range(N_ITEMS):
        got = {int(j): float(s) for j, s in zip(model.neighbours[i], model.similarities[i]) if j >= 0}
        want = {j: sim[i, j] for j in np.flatnonzero(sim[i])}
        assert got.keys() == want.keys() and all(got[j] == pytest.approx(want[j], rel=1e-6) for j in got)
    expected = [_conservative_rank(sim[prefix[-1]], t) for prefix, t in _prefixes(test)]
    assert model.ranks(test).tolist() == expected


def _naive_vsknn(train, prefix, k, sample_size):
    sets = [set(train.session(s).tolist()) for s in range(train.n_sessions)]
    weight = {}
    for p, x in enumerate(prefix):
        weight[x] = (p + 1) / len(prefix)
    sharing = [s for s in range(len(sets)) if sets[s] & weight.keys()]
    sample = sorted(sharing, reverse=True)[:sample_size]              # the most recent ones
    sims = {s: sum(w for x, w in weight.items() if x in sets[s]) for s in sample}
    neighbours = sorted(sample, key=lambda s: (-sims[s], -s))[:k]
    scores = np.zeros(N_ITEMS)
    for s in neighbours:
        for j in sets[s]:
            scores[j] += sims[s]
    return scores


@pytest.mark.parametrize("k,sample_size", [(100, 500), (5, 12)])
def test_vsknn_matches_its_definition(k, sample_size):
    train, test = _data(4, 150), _data(5, 25)
    model = VSKNN.fit(train, k=k, sample_size=sample_size)
    expected = [_conservative_rank(_naive_vsknn(train, prefix, k, sample_size), t)
                for prefix, t in _prefixes(test, 3)]
    assert model.ranks(test, first_target=3).tolist() == expected


@pytest.mark.parametrize("name", list(BASELINES))
def test_artifacts_round_trip(tmp_path, name):
    train, test = _data(6, 60), _data(7, 15)
    model = build(name, train)
    path = model.save(tmp_path / name, {"sessions": train.n_sessions}, metrics={"recall@20": 0.1})
    loaded = load_baseline(path)
    assert type(loaded) is type(model) and list(loaded.item_ids) == list(train.item_ids)
    assert loaded.ranks(test).tolist() == model.ranks(test).tolist()


def test_bad_names_and_positions():
    with pytest.raises(ValueError, match="unknown baseline"):
        build("mostpop", _data(0, 5))
    with pytest.raises(ValueError):
        prediction_points(_data(0, 5), 1)


def _served_rank(scores, prefix, target):
    """The served setting in plain Python: the prefix's items are never shown, a target among them a miss."""
    seen = set(prefix)
    if target in seen:
        return HIDDEN_RANK
    return int(sum(1 for j, s in enumerate(scores) if j not in seen and s >= scores[target]))


def test_served_ranks_of_every_baseline_match_a_plain_python_reference():
    train, test = _data(8, 150, max_len=9), _data(9, 40, max_len=9)
    support = np.bincount(train.items, minlength=N_ITEMS)
    sim = _naive_itemknn(train, 6, 20.0, 0.5)
    naive = {"popular": lambda prefix: support,
             "itemknn": lambda prefix: sim[prefix[-1]],
             "vsknn": lambda prefix: _naive_vsknn(train, prefix, 5, 12)}
    models = {"popular": build("popular", train), "itemknn": ItemKNN.fit(train, k=6, lam=20.0, alpha=0.5),
              "vsknn": VSKNN.fit(train, k=5, sample_size=12)}
    for name, model in models.items():
        standard, served = model.rank_pairs(test)
        cases = list(_prefixes(test))
        assert standard.tolist() == [_conservative_rank(naive[name](p), t) for p, t in cases], name
        want = [_served_rank(naive[name](p), p, t) for p, t in cases]
        assert served.tolist() == want, name
        assert model.ranks(test, served=True).tolist() == want
        hidden = sum(r == HIDDEN_RANK for r in want)
        assert 0 < hidden < len(want)               # the data has repeats and new targets both
        assert (served[served != HIDDEN_RANK] <= standard[served != HIDDEN_RANK]).all()
