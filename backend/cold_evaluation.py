"""Cold-start evaluation (issue 15, part 6): leave-one-out on user sequences with a seeded share of items held out.

Protocol: each user's last item is the test target and the items before it the context; training sessions are
the users' sequences without their last item. ``cold_fraction`` of the items (seeded) lose every training
event but keep their features. Every item is ranked (the context's items excluded: a user's earlier items are
never recommended, as the published tables on these files do); ties count against the target. Reported for all,
warm and cold targets: HR (= Recall) and NDCG at 10 and 20, MRR@20, and the share of cold items in any top-20.

Models: GRU4Rec without features (a cold item is never trained: it cannot be ranked), GRU4Rec with features,
the features-only model (``id_dropout=1``), popular-in-category (items sharing most feature tokens with the last
context item, then by training popularity), content-kNN (cosine of the feature rows to the last context item),
and the session baselines of backend/baselines/ fitted on the training sessions: item-kNN (the neighbours of the
last context item it knows) and V-SKNN (the whole context, its items the model knows). Like GRU4Rec without
features, neither can rank a cold item (it scores -inf, as every item a model does not know).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from backend.baselines.itemknn import ItemKNN
from backend.baselines.vsknn import VSKNN
from backend.errors import UpnextError
from backend.gru4rec.params import Hyperparameters
from backend.gru4rec.trainer import train
from backend.gru4rec.weights import GRU4RecWeights, gru_step
from backend.item_features import FeatureConfig, ItemFeatures, read_feature_file, with_catalogue_items
from backend.session_data import SessionData

CUTOFFS = (10, 20)
CHUNK = 1024


@dataclass(frozen=True)
class ColdSplit:
    item_ids: list[str]          # every item, index = position
    cold: np.ndarray             # (n_items,) bool
    train: SessionData           # training sessions (cold items' events removed), item_ids = the warm items seen
    contexts: list[np.ndarray]   # per user: item indices before the target
    targets: np.ndarray          # (n_users,) item index of the target


def read_sequences(path: str | Path) -> list[list[str]]:
    """S3-Rec layout: one user per line, ``user_id item_1 ... item_n`` (the user id is not an item)."""
    out = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                out.append(parts[1:])
    if not out:
        raise UpnextError(f"{path}: no user with two or more items")
    return out


def read_item_records(path: str | Path) -> list[dict]:
    """Catalogue records: JSON lines (backend/item_features.py), or an S3-Rec ``item2attributes`` JSON object
    (``{"item": [attribute ids]}``: each id becomes the string attribute ``attr``)."""
    path = Path(path)
    text = path.read_text()
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and "id" not in whole:
        return [{"id": str(k), "attributes": {"attr": [str(a) for a in v]}} for k, v in whole.items()]
    return read_feature_file(path)


def cold_split(sequences: list[list[str]], all_items: list[str], cold_fraction: float, seed: int) -> ColdSplit:
    if not 0 <= cold_fraction < 1:
        raise UpnextError("--cold-items must be in [0, 1)")
    index = {i: k for k, i in enumerate(all_items)}
    for seq in sequences:
        for it in seq:
            if it not in index:
                index[it] = len(index)
    item_ids = list(index)
    rng = np.random.default_rng(seed)
    cold = np.zeros(len(item_ids), bool)
    cold[rng.choice(len(item_ids), int(round(cold_fraction * len(item_ids))), replace=False)] = True
    train_sessions, contexts, targets = [], [], []
    for seq in sequences:
        idx = np.array([index[i] for i in seq], np.int64)
        contexts.append(idx[:-1])
        targets.append(idx[-1])
        train_sessions.append([item_ids[i] for i in idx[:-1] if not cold[i]])
    train = SessionData.from_sessions([s for s in train_sessions if len(s) >= 2])
    return ColdSplit(item_ids, cold, train, contexts, np.array(targets, np.int64))


def final_states(weights: GRU4RecWeights, contexts: list[np.ndarray]) -> np.ndarray:
    """(n_users, H_last) the GRU's output after each context (no dropout); contexts hold model item indices."""
    n = len(contexts)
    lengths = np.array([len(c) for c in contexts])
    states = [np.zeros((n, layer.size), np.float32) for layer in weights.layers]
    pad = np.zeros((n, lengths.max(initial=0)), np.int64)
    for u, c in enumerate(contexts):
        pad[u, :len(c)] = c
    for t in range(pad.shape[1]):
        rows = np.flatnonzero(lengths > t)
        new = gru_step(weights, pad[rows, t], [s[rows] for s in states])
        for s, v in zip(states, new):
            s[rows] = v
    return states[-1]


class Scorer:
    """``scores(users)`` -> (len(users), n_items) float32 (V-SKNN: float64) over the split's item indices."""

    def __init__(self, name: str, fn):
        self.name, self.fn = name, fn


def gru4rec_scorer(name: str, weights: GRU4RecWeights, model_ids, split: ColdSplit) -> Scorer:
    """Scores of a GRU4Rec model whose items are ``model_ids``; items it does not know score -inf, and so does a
    context item it does not know (skipped)."""
    weights = weights.folded()                     # the inputs too are the item vectors (ID + features)
    to_model = {i: k for k, i in enumerate(model_ids)}
    where = np.array([to_model.get(i, -1) for i in split.item_ids], np.int64)
    contexts = [where[c][where[c] >= 0] for c in split.contexts]
    vectors = np.asarray(weights.item_vectors(), np.float32)
    By = np.asarray(weights.By, np.float32)
    states = final_states(weights, contexts)
    known = where >= 0

    def fn(users: np.ndarray) -> np.ndarray:
        out = np.full((len(users), len(split.item_ids)), -np.inf, np.float32)
        out[:, known] = states[users] @ vectors[where[known]].T + By[where[known]]
        return out
    return Scorer(name, fn)


def content_scorers(features: ItemFeatures, split: ColdSplit) -> list[Scorer]:
    """popular-in-category and content-kNN, both from the last context item's feature row."""
    X = features.aligned(split.item_ids)

    M = sp.csr_matrix((X.values, X.indices, X.indptr), shape=(len(split.item_ids), X.n_features))
    B = M.copy()
    B.data[:] = 1.0
    where = {i: k for k, i in enumerate(split.item_ids)}
    to_split = np.array([where[i] for i in split.train.item_ids], np.int64)
    support = np.bincount(to_split[split.train.items], minlength=len(split.item_ids)).astype(np.float32)
    pop = support / (support.max(initial=0) + 1.0)                 # < 1: popularity only breaks overlap ties
    last = np.array([c[-1] if len(c) else -1 for c in split.contexts])

    def knn(users):
        return np.asarray((M[np.maximum(last[users], 0)] @ M.T).todense(), np.float32)

    def popular_in_category(users):
        overlap = np.asarray((B[np.maximum(last[users], 0)] @ B.T).todense(), np.float32)
        return overlap + pop[None, :]
    return [Scorer("popular-in-category", popular_in_category), Scorer("content-knn", knn)]


def _to_split(model_ids, split: ColdSplit) -> np.ndarray:
    """(n_model_items,) the split's index of each item of a model trained on ``split.train``."""
    where = {i: k for k, i in enumerate(split.item_ids)}
    return np.array([where[str(i)] for i in model_ids], np.int64)


def _known_contexts(model_ids, split: ColdSplit) -> list[np.ndarray]:
    """Each user's context as the model's item indices, the items it does not know (cold ones) left out."""
    to_model = np.full(len(split.item_ids), -1, np.int64)
    to_model[_to_split(model_ids, split)] = np.arange(len(model_ids))
    return [to_model[c][to_model[c] >= 0] for c in split.contexts]


def itemknn_scorer(knn: ItemKNN, split: ColdSplit) -> Scorer:
    """Item-kNN (backend/baselines/itemknn.py): the similarity of each item to the last context item the model
    knows; every other item scores 0."""
    to_split = _to_split(knn.item_ids, split)
    last = np.array([c[-1] if len(c) else -1 for c in _known_contexts(knn.item_ids, split)])

    def fn(users: np.ndarray) -> np.ndarray:
        out = np.full((len(users), len(split.item_ids)), -np.inf, np.float32)
        out[:, to_split] = 0.0
        for k, u in enumerate(users):
            if last[u] >= 0:
                nb = knn.neighbours[last[u]]
                ok = nb >= 0
                out[k, to_split[nb[ok]]] = knn.similarities[last[u]][ok]
        return out
    return Scorer("item-knn", fn)


def vsknn_scorer(model: VSKNN, split: ColdSplit) -> Scorer:
    """V-SKNN (backend/baselines/vsknn.py) with the user's context (the items the model knows) as the session:
    item x at position p of L weighs p / L (its latest position); the ``sample_size`` most recent training
    sessions sharing an item are the candidates, each similar by the weights of the items it holds; the ``k``
    most similar (ties: the more recent) vote for their items with their similarity (the others it knows score 0,
    those it does not know -inf). The sums run in the
    kernel's order, in float64, so ties fall as they do there."""
    k, sample_size = int(model.params["k"]), int(model.params["sample_size"])
    n_model = len(model.item_ids)
    to_split = _to_split(model.item_ids, split)
    contexts = _known_contexts(model.item_ids, split)
    sims = np.zeros(len(model.session_ptr) - 1)

    def fn(users: np.ndarray) -> np.ndarray:
        out = np.full((len(users), len(split.item_ids)), -np.inf)
        out[:, to_split] = 0.0
        for r, u in enumerate(users):
            c = contexts[u]
            if not len(c):
                continue
            weights = np.zeros(n_model)
            weights[c] = np.arange(1, len(c) + 1) / len(c)        # in order: the latest position wins
            distinct = c[np.sort(np.unique(c, return_index=True)[1])]
            sims[:] = 0.0
            for x in distinct:                                      # each item's sessions, in the prefix's order
                sims[model.item_sessions[model.item_ptr[x]:model.item_ptr[x + 1]]] += weights[x]
            recent = np.flatnonzero(sims)[::-1][:sample_size]       # the most recent first
            top = recent[np.argsort(-sims[recent], kind="stable")[:k]]
            lengths = model.session_ptr[top + 1] - model.session_ptr[top]
            items = np.concatenate([model.session_items[model.session_ptr[t]:model.session_ptr[t + 1]]
                                    for t in top])
            scores = np.zeros(n_model)
            np.add.at(scores, items, np.repeat(sims[top], lengths))
            out[r, to_split] = scores
        return out
    return Scorer("v-sknn", fn)


def evaluate_scorer(scorer: Scorer, split: ColdSplit) -> dict:
    """HR/NDCG@10,20 and MRR@20 for all, warm and cold targets; the share of cold items in any top-20."""
    n = len(split.targets)
    ranks = np.zeros(n, np.int64)
    seen_cold = np.zeros(len(split.item_ids), bool)
    for lo in range(0, n, CHUNK):
        users = np.arange(lo, min(lo + CHUNK, n))
        scores = scorer.fn(users)
        for k, u in enumerate(users):
            scores[k, split.contexts[u]] = -np.inf          # a user's earlier items are not recommended
        tgt = scores[np.arange(len(users)), split.targets[users]][:, None]
        better = (scores > tgt).sum(1)
        ties = (scores == tgt).sum(1) - 1
        ranks[users] = np.where(np.isfinite(tgt[:, 0]), better + ties + 1, len(split.item_ids) + 1)
        k_top = min(20, scores.shape[1])
        top = np.argpartition(-scores, k_top - 1, axis=1)[:, :k_top]
        finite = np.isfinite(np.take_along_axis(scores, top, 1))
        seen_cold[top[finite]] = True
    cold_t = split.cold[split.targets]
    out = {"model": scorer.name}
    for part, sel in (("all", np.ones(n, bool)), ("warm", ~cold_t), ("cold", cold_t)):
        r = ranks[sel]
        m = {"targets": int(sel.sum())}
        for k in CUTOFFS:
            hit = r <= k
            m[f"hr@{k}"] = float(hit.mean()) if len(r) else 0.0
            m[f"ndcg@{k}"] = float((hit / np.log2(r + 1)).mean()) if len(r) else 0.0
        m["mrr@20"] = float(((r <= 20) / r).mean()) if len(r) else 0.0
        out[part] = m
    n_cold = int(split.cold.sum())
    out["cold_in_top20"] = float((seen_cold & split.cold).sum() / n_cold) if n_cold else 0.0
    return out


def run(sequences: list[list[str]], records: list[dict], params: Hyperparameters, *, cold_fraction: float,
        seed: int = 0, id_dropout: float = 0.3, models: tuple[str, ...] | None = None,
        log=lambda msg: None) -> list[dict]:
    """Every model of the module docstring on one split; one result dict each (with its training seconds)."""
    split = cold_split(sequences, [str(r["id"]) for r in records], cold_fraction, seed)
    features = ItemFeatures.build(records, FeatureConfig(params.feature_min_count, params.title_buckets))
    log(f"{len(split.targets)} users, {len(split.item_ids)} items ({int(split.cold.sum())} cold), "
        f"{split.train.n_events} training events, {features.n_features} features")
    full = with_catalogue_items(split.train, split.item_ids)
    variants = {"gru4rec": params.replace(item_features=False),
                "gru4rec+features": params.replace(item_features=True, id_dropout=id_dropout),
                "features-only": params.replace(item_features=True, id_dropout=1.0)}
    results = []
    for name in models or ("popular-in-category", "content-knn", "item-knn", "v-sknn", *variants):
        t0 = time.perf_counter()
        if name in variants:
            p = variants[name]
            data = full if p.item_features else split.train
            trained = train(data, p, features=features if p.item_features else None)
            scorer = gru4rec_scorer(name, trained.weights, list(data.item_ids), split)
            extra = {"train_seconds": round(time.perf_counter() - t0, 1),
                     "events_per_second": round(trained.events_per_second), "params": p.as_dict()}
        elif name == "item-knn":
            scorer, extra = itemknn_scorer(ItemKNN.fit(split.train), split), {}
        elif name == "v-sknn":
            scorer, extra = vsknn_scorer(VSKNN.fit(split.train), split), {}
        else:
            scorer = {s.name: s for s in content_scorers(features, split)}[name]
            extra = {}
        res = {**evaluate_scorer(scorer, split), **extra}
        log(json.dumps({k: v for k, v in res.items() if k != "params"}))
        results.append(res)
    return results
