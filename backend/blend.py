"""The GRU4Rec + item-kNN blend (placement algorithm ``gru4rec_blend``, issue 14 part 4):

    score(i) = softmax(GRU4Rec scores of the session state)(i) + w * sim(c, i) / sum_j sim(c, j)

where c is the context item (the page's item, else the session's last item) and sim(c, .) its item-kNN
neighbours' similarities (0 for an item that is not a neighbour). Both terms sum to 1 over the items, so ``w`` is
the share of item-to-item in the mix. ``w`` lives in the GRU4Rec manifest under ``"blend": {"weight": w}``
(``upnext train --blend-weight auto|W``); a bundle without it uses DEFAULT_WEIGHT, the weight chosen on the
yoochoose1_64 validation split (tests/bench/bench_served.py: served Recall@20 +3.1% over GRU4Rec alone).

Serving scores it with ``kernels.serving_cpu.blend_topk``; offline evaluation (``upnext evaluate``, the bench)
with ``blend_rank_pairs`` here, the same formula. Numpy and numba only: the serving path imports this module.
"""
from __future__ import annotations

import numpy as np

from backend.gru4rec.batches import session_parallel
from backend.gru4rec.evaluation import _carry, prediction_mask
from backend.gru4rec.ranking_metrics import both_protocols, conservative_ranks, served_ranks
from backend.gru4rec.weights import gru_step
from backend.session_data import SessionData, restrict_to_items, select_sessions

DEFAULT_WEIGHT = 0.35          # measured: the weight chosen on yoochoose1_64's validation split (bench_served.py)
WEIGHTS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0, 2.0)     # the grid ``--blend-weight auto`` searches
VALIDATION_SHARE = 0.1         # the newest 10% of the training sessions choose w


def blend_weight(manifest: dict) -> float:
    """The blend weight a GRU4Rec manifest records, else DEFAULT_WEIGHT."""
    blend = manifest.get("blend") if isinstance(manifest, dict) else None
    w = blend.get("weight") if isinstance(blend, dict) else None
    if isinstance(w, (int, float)) and not isinstance(w, bool) and np.isfinite(w) and w >= 0:
        return float(w)
    return DEFAULT_WEIGHT


def check_weight(w: float) -> float:
    w = float(w)
    if not np.isfinite(w) or w < 0:
        raise ValueError(f"a blend weight is a finite number >= 0, got {w}")
    return w


def parse_weight_arg(text: str | None) -> str | float | None:
    """A ``--blend-weight`` value: None (none kept), "auto", or a weight; ValueError with a message for others."""
    if text is None or text == "auto":
        return text
    try:
        return check_weight(float(text))
    except ValueError:
        raise ValueError(f"--blend-weight {text!r}: auto, or a number >= 0") from None


def aligned_neighbours(knn_item_ids, neighbours: np.ndarray, similarities: np.ndarray,
                       item_ids) -> tuple[np.ndarray, np.ndarray]:
    """Item-kNN ``neighbours``/``similarities`` (indices into ``knn_item_ids``) moved into the index space of
    ``item_ids`` (the GRU4Rec model's): (n_items, k) int64 neighbours (-1 none) and (n_items, k) float32 weights,
    each row's similarities divided by their sum (0 where a row has none)."""
    index = {str(i): n for n, i in enumerate(item_ids)}
    to_model = np.array([index.get(str(i), -1) for i in knn_item_ids], dtype=np.int64)
    raw = np.asarray(neighbours, dtype=np.int64)
    sims = np.where(raw >= 0, np.asarray(similarities, dtype=np.float32), np.float32(0))
    mapped = np.where(raw >= 0, to_model[np.maximum(raw, 0)], -1)
    sims = np.where(mapped >= 0, sims, np.float32(0)).astype(np.float32)
    sums = sims.sum(axis=1, keepdims=True)
    norm = np.divide(sims, sums, out=np.zeros_like(sims), where=sums > 0).astype(np.float32)
    out_nb = np.full((len(index), raw.shape[1]), -1, dtype=np.int64)
    out_w = np.zeros((len(index), raw.shape[1]), dtype=np.float32)
    rows = to_model >= 0
    out_nb[to_model[rows]] = mapped[rows]
    out_w[to_model[rows]] = norm[rows]
    return out_nb, out_w


def blend_scores(logits: np.ndarray, context: np.ndarray, neighbours: np.ndarray, nweights: np.ndarray,
                 w: float) -> np.ndarray:
    """(B, n_items) float32 blend scores of B rows of GRU4Rec scores ``logits`` whose context items are
    ``context`` (B,) (-1: none, pure softmax)."""
    block = logits - logits.max(axis=1, keepdims=True)
    np.exp(block, out=block)
    block /= block.sum(axis=1, keepdims=True)
    has = context >= 0
    cols = neighbours[np.maximum(context, 0)]
    vals = nweights[np.maximum(context, 0)]
    valid = (cols >= 0) & has[:, None]
    r_idx = np.repeat(np.arange(len(context)), valid.sum(axis=1))
    np.add.at(block, (r_idx, cols[valid]), np.float32(w) * vals[valid])
    return block


def blend_rank_pairs(weights, neighbours: np.ndarray, nweights: np.ndarray, test: SessionData, blend_weights,
                     first_target: int = 2, batch_size: int = 256) -> dict:
    """{w: (standard ranks, served ranks)} of the blend with each weight in ``blend_weights``, the context being
    the session's last item; ``neighbours``/``nweights`` from ``aligned_neighbours`` (the model's item space,
    ``test`` aligned to it)."""
    schedule = session_parallel(test.offsets, batch_size)
    counted = prediction_mask(schedule.position, first_target)
    out = {w: (np.empty(schedule.n_pairs, np.int64), np.empty(schedule.n_pairs, np.int64)) for w in blend_weights}
    Wy, By = np.asarray(weights.Wy), np.asarray(weights.By)
    states = [np.zeros((0, h), np.float32) for h in weights.sizes]
    session_start = np.repeat(test.offsets[:-1], test.lengths).astype(np.int64)
    for t in range(schedule.n_steps):
        rows = schedule.rows(t)
        events, src = schedule.event[rows], schedule.src[rows]
        states = [_carry(s, src) for s in states]
        states = gru_step(weights, test.items[events], states)
        logits = states[-1] @ Wy.T + By
        last = test.items[events].astype(np.int64)
        targets = test.items[events + 1]
        for w in blend_weights:
            mixed = blend_scores(logits.copy(), last, neighbours, nweights, w)
            std, srv = np.empty(len(events), np.int64), np.empty(len(events), np.int64)
            conservative_ranks(mixed, targets, std)
            served_ranks(mixed, targets, test.items, session_start[events], (events + 1).astype(np.int64), srv)
            out[w][0][rows], out[w][1][rows] = std, srv
    return {w: (a[counted], b[counted]) for w, (a, b) in out.items()}


def evaluate_blend(weights, neighbours, nweights, test: SessionData, w: float, first_target: int = 2) -> dict:
    """The blend's standard-protocol metrics with the served setting's under "served"."""
    return both_protocols(*blend_rank_pairs(weights, neighbours, nweights, test, (w,), first_target)[w])


def validation_split(data: SessionData, share: float = VALIDATION_SHARE) -> tuple[SessionData, SessionData]:
    """(older sessions to fit on, the newest ``share`` to choose w on, restricted to the items the older know)."""
    n_valid = max(1, int(round(data.n_sessions * share)))
    older = np.arange(data.n_sessions) < data.n_sessions - n_valid
    fit, valid = select_sessions(data, older, reindex=False), select_sessions(data, ~older, reindex=False)
    return fit, restrict_to_items(valid, fit.item_ids[fit.support() > 0])


def choose_weight(weights, knn, valid: SessionData, first_target: int = 2,
                  grid=WEIGHTS) -> tuple[float, dict[float, float]]:
    """(the w of ``grid`` with the best served Recall@20 on ``valid``, ties to the smaller; {w: that recall}) of
    the GRU4Rec ``weights`` and the ItemKNN ``knn`` fitted on the same (older) sessions."""
    nb, nw = aligned_neighbours(knn.item_ids, knn.neighbours, knn.similarities, knn.item_ids)
    on_valid = {w: round(both_protocols(*r)["served"]["recall@20"], 4)
                for w, r in blend_rank_pairs(weights, nb, nw, valid, grid, first_target).items()}
    return max(on_valid, key=lambda w: (on_valid[w], -w)), on_valid
