"""The GRU4Rec + item-kNN blend (placement algorithm ``gru4rec_blend``, issue 14 part 4):

    score(i) = softmax(GRU4Rec scores of the session state)(i) + w * sum_d a_d sim(c_d, i) / sum_j sim(c_d, j)

where c_0 is the context item (the page's item, else the session's last item), c_1, c_2, ... the session's items
before it (newest first, up to ``context`` items in all), a_d = decay^d normalised to sum 1 over the items there
are, and sim(c, .) an item's item-kNN neighbours' similarities (0 for an item that is not a neighbour). Both
terms sum to 1 over the items, so ``w`` is the share of item-to-item in the mix. The settings live in the GRU4Rec
manifest under ``"blend": {"weight": w, "context": k, "decay": d}``, chosen per model: by the training runs on
their held-out day, by ``upnext train --blend-weight auto`` on the newest 10% of the training sessions, or given
(``--blend-weight W``, with the last DEFAULT_CONTEXT items). A bundle with a weight but no context keeps the last
item alone (context 1, as such bundles were chosen); a bundle without a blend is served GRU4Rec alone (UNCHOSEN,
weight 0): no weight is right for every model. On yoochoose1_64 (cross-entropy, 1 epoch) w 0.5 on the last three
items took served Recall@20 from 0.4483 to 0.4678 on the validation split, while on a 10-epoch diginetica model
(bpr-max, whose softmax is flat) the same weight cost 10% and the best was 0.001.

Serving scores it with ``kernels.serving_cpu.blend_topk`` on the neighbours of all context items at once
(``context_neighbours``); offline evaluation (``upnext evaluate``, the bench) with ``blend_rank_pairs`` here, the
same formula in the same float32 steps. Numpy and numba only: the serving path imports this module.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from backend.errors import UpnextError
from backend.gru4rec.batches import session_parallel
from backend.gru4rec.evaluation import _carry, prediction_mask
from backend.gru4rec.ranking_metrics import both_protocols, conservative_ranks, served_ranks
from backend.gru4rec.weights import gru_step
from backend.session_data import SessionData, restrict_to_items, select_sessions

# the weights ``--blend-weight auto`` and training runs search. The small ones are for models whose softmax is
# flat (bpr-max with an elu final activation): there a weight of 0.02 already lets item-to-item decide (a 10-epoch
# diginetica model: served Recall@20 .3867 alone, .3888 at 0.001 on the last 3 items, .3627 at 0.02)
WEIGHTS = (0.0, 0.0003, 0.001, 0.003, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0, 2.0)
CONTEXTS = (1, 3)              # and the context lengths
DECAY = 0.5                    # each older context item counts half the one after it
MAX_CONTEXT = 10
VALIDATION_SHARE = 0.1         # the newest 10% of the training sessions choose the blend


class Blend(NamedTuple):
    weight: float
    context: int = 1           # the context item and the session's items before it, newest first
    decay: float = DECAY

    def describe(self) -> str:
        return f"{self.weight} x item-to-item of the last {self.context}" if self.context > 1 else \
            f"{self.weight} x item-to-item"


DEFAULT_CONTEXT = 3            # a given weight's context: the page item and the two before it
UNCHOSEN = Blend(0.0, DEFAULT_CONTEXT)   # a bundle without a blend: GRU4Rec alone (see the module docstring)


def blend_of(manifest: dict) -> Blend:
    """The blend a GRU4Rec manifest records (its context 1 when it has none), else UNCHOSEN."""
    blend = manifest.get("blend") if isinstance(manifest, dict) else None
    w = blend.get("weight") if isinstance(blend, dict) else None
    if not (_number(w) and w >= 0):
        return UNCHOSEN
    context, decay = blend.get("context", 1), blend.get("decay", DECAY)
    context = context if isinstance(context, int) and not isinstance(context, bool) and \
        1 <= context <= MAX_CONTEXT else 1
    decay = decay if _number(decay) and 0 < decay <= 1 else DECAY
    return Blend(float(w), context, float(decay))


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and bool(np.isfinite(x))


def check_weight(w: float) -> float:
    w = float(w)
    if not np.isfinite(w) or w < 0:
        raise ValueError(f"a blend weight is a finite number >= 0, got {w}")
    return w


def parse_weight_arg(text: str | None) -> str | float | None:
    """A ``--blend-weight`` value: None (none kept), "auto", or a weight; UpnextError with a message for others."""
    if text is None or text == "auto":
        return text
    try:
        return check_weight(float(text))
    except ValueError:
        raise UpnextError(f"--blend-weight {text!r}: auto, or a number >= 0") from None


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


def _shares(blend: Blend, n: int) -> np.ndarray:
    """(n,) float32: the weight of each of the newest n context items, decay^d over their sum."""
    share = blend.decay ** np.arange(n, dtype=np.float64)
    return (share / share.sum()).astype(np.float32)


def context_neighbours(recent: np.ndarray, neighbours: np.ndarray, nweights: np.ndarray,
                       blend: Blend) -> tuple[np.ndarray, np.ndarray]:
    """The item-kNN part of one request as flat (m,) int64 neighbours (-1 none) and (m,) float32 weights, for
    ``kernels.blend_topk``: ``recent`` the context item first, then the session's items before it (newest
    first); the first ``blend.context`` of them count, each row of ``nweights`` times its share."""
    recent = np.asarray(recent, dtype=np.int64)[:blend.context]
    if len(recent) == 0:
        return np.full(1, -1, np.int64), np.zeros(1, np.float32)
    share = _shares(blend, len(recent))
    return neighbours[recent].ravel(), (nweights[recent] * share[:, None]).ravel()


def blend_scores(logits: np.ndarray, recent: np.ndarray, neighbours: np.ndarray, nweights: np.ndarray,
                 blend: Blend) -> np.ndarray:
    """(B, n_items) float32 blend scores of B rows of GRU4Rec scores ``logits`` whose context items are the rows
    of ``recent`` (B, D): newest first, -1 past the session's start (a row of -1: pure softmax)."""
    block = logits - logits.max(axis=1, keepdims=True)
    np.exp(block, out=block)
    block /= block.sum(axis=1, keepdims=True)
    depth = min(recent.shape[1], blend.context)
    counts = (recent[:, :depth] >= 0).sum(axis=1)
    table = np.zeros((depth + 1, depth), np.float32)          # row n: the shares of a row with n context items
    for n in range(1, depth + 1):
        table[n, :n] = _shares(blend, n)
    wf = np.float32(blend.weight)
    for d in range(depth):
        rows = np.flatnonzero(recent[:, d] >= 0)
        if not len(rows):
            break
        ctx = recent[rows, d]
        cols, vals = neighbours[ctx], nweights[ctx] * table[counts[rows], d][:, None]
        valid = cols >= 0
        np.add.at(block, (np.repeat(rows, valid.sum(axis=1)), cols[valid]), wf * vals[valid])
    return block


def blend_rank_pairs(weights, neighbours: np.ndarray, nweights: np.ndarray, test: SessionData, blends,
                     first_target: int = 2, batch_size: int = 256) -> dict:
    """{blend: (standard ranks, served ranks)} of each Blend in ``blends``, the context being the session's items
    up to the current one; ``neighbours``/``nweights`` from ``aligned_neighbours`` (the model's item space,
    ``test`` aligned to it)."""
    schedule = session_parallel(test.offsets, batch_size)
    counted = prediction_mask(schedule.position, first_target)
    out = {b: (np.empty(schedule.n_pairs, np.int64), np.empty(schedule.n_pairs, np.int64)) for b in blends}
    depth = max(b.context for b in blends)
    Wy, By = np.asarray(weights.Wy), np.asarray(weights.By)
    states = [np.zeros((0, h), np.float32) for h in weights.sizes]
    session_start = np.repeat(test.offsets[:-1], test.lengths).astype(np.int64)
    for t in range(schedule.n_steps):
        rows = schedule.rows(t)
        events, src = schedule.event[rows], schedule.src[rows]
        states = [_carry(s, src) for s in states]
        states = gru_step(weights, test.items[events], states)
        logits = states[-1] @ Wy.T + By
        back = events[:, None] - np.arange(depth)[None, :]
        recent = np.where(back >= session_start[events][:, None], test.items[np.maximum(back, 0)], -1)
        targets = test.items[events + 1]
        for b in blends:
            mixed = blend_scores(logits.copy(), recent, neighbours, nweights, b)
            std, srv = np.empty(len(events), np.int64), np.empty(len(events), np.int64)
            conservative_ranks(mixed, targets, std)
            served_ranks(mixed, targets, test.items, session_start[events], (events + 1).astype(np.int64), srv)
            out[b][0][rows], out[b][1][rows] = std, srv
    return {b: (x[counted], y[counted]) for b, (x, y) in out.items()}


def evaluate_blend(weights, neighbours, nweights, test: SessionData, blend: Blend, first_target: int = 2) -> dict:
    """The blend's standard-protocol metrics with the served setting's under "served"."""
    return both_protocols(*blend_rank_pairs(weights, neighbours, nweights, test, (blend,), first_target)[blend])


def validation_split(data: SessionData, share: float = VALIDATION_SHARE) -> tuple[SessionData, SessionData]:
    """(older sessions to fit on, the newest ``share`` to choose w on, restricted to the items the older know)."""
    n_valid = max(1, int(round(data.n_sessions * share)))
    older = np.arange(data.n_sessions) < data.n_sessions - n_valid
    fit, valid = select_sessions(data, older, reindex=False), select_sessions(data, ~older, reindex=False)
    return fit, restrict_to_items(valid, fit.item_ids[fit.support() > 0])


def choose_blend(weights, knn, valid: SessionData, first_target: int = 2,
                 item_ids=None) -> tuple[Blend, list[dict], dict]:
    """(the Blend of WEIGHTS x CONTEXTS with the best served Recall@20 on ``valid``, ties to the smaller weight
    then the shorter context; each one's recall as [{"weight", "context", "served_recall@20"}]; the best one's
    metrics on ``valid``, as ``evaluate_blend`` gives them) of the GRU4Rec ``weights`` and the ItemKNN ``knn``
    fitted on the same (older) sessions. ``item_ids``: the model's items, which ``valid`` is indexed by (default:
    the item-kNN's own, when both were fitted on the same data)."""
    nb, nw = aligned_neighbours(knn.item_ids, knn.neighbours, knn.similarities,
                                knn.item_ids if item_ids is None else item_ids)
    grid = [Blend(w, c) for c in CONTEXTS for w in WEIGHTS]
    metrics = {b: both_protocols(*r) for b, r in blend_rank_pairs(weights, nb, nw, valid, grid, first_target).items()}
    on_valid = {b: round(m["served"]["recall@20"], 4) for b, m in metrics.items()}
    best = max(on_valid, key=lambda b: (on_valid[b], -b.weight, -b.context))
    return best, [{"weight": b.weight, "context": b.context, "served_recall@20": r}
                  for b, r in on_valid.items()], metrics[best]
