"""Serving kernels in plain numpy: the readable definition that ``backend.kernels.serving_cpu`` must reproduce.

Same names, arguments and results as ``cpu.py`` (tests compare them). Conventions shared by both:

- A session state is ONE float32 vector holding every GRU layer's hidden state, layer after layer:
  ``state[off_l : off_l + H_l]`` with ``off_l = H_0 + ... + H_{l-1}``; its size is ``S = sum(H_l)``.
- GRU weights come as tuples with one array per layer (``Wx``, ``Wrz``, ``Wh``, ``b``), laid out as
  ``backend/artifact.py`` documents. ``inputs`` is the (n_items, D) float32 matrix whose row i feeds layer 0 for
  item i: ``Wy`` (shared embedding), ``E`` (separate embedding) or ``layer0.Wx`` (one-hot). With ``onehot`` the row
  is already ``x @ Wx`` and ``Wx[0]`` is not read (pass an empty (0, 3*H_0) array).
- Scoring: ``W`` is the (n_items, H_last) item matrix, float32, or uint16 holding float16 bits (the optional
  half-size copy); ``bias`` is (n_items,) float32. ``exclude`` is an int64 array of item indices never returned;
  ``available`` is a uint8 array of n_items flags (0 = never returned) or an empty array meaning "all available".
- Top-k order: score descending, ties broken by the lower item index. Results hold min(k, allowed items) entries.
"""
from __future__ import annotations

import numpy as np


def _item_matrix_f32(W: np.ndarray) -> np.ndarray:
    """(n, D) float32 view of an item matrix stored as float32 or as float16 bits (uint16)."""
    if W.dtype == np.uint16:
        return W.view(np.float16).astype(np.float32)
    return W


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def gru_step_batch(states: np.ndarray, items: np.ndarray, inputs: np.ndarray, onehot: bool,
                   Wx: tuple, Wrz: tuple, Wh: tuple, b: tuple) -> None:
    """Advance B sessions by one item each, in place.

    states: (B, S) float32, updated in place; items: (B,) int64 item indices fed to the sessions.
    """
    off = 0
    x = None
    for l in range(len(Wh)):
        H = Wh[l].shape[0]
        h = states[:, off:off + H]
        if l == 0 and onehot:
            a = inputs[items] + b[0]
        else:
            a = (inputs[items] if l == 0 else x) @ Wx[l] + b[l]
        g = h @ Wrz[l]
        r = _sigmoid(a[:, :H] + g[:, :H])
        z = _sigmoid(a[:, H:2 * H] + g[:, H:])
        n = np.tanh(a[:, 2 * H:] + (r * h) @ Wh[l])
        new = (z * h + (1 - z) * n).astype(np.float32)
        states[:, off:off + H] = new
        x = new
        off += H


def gru_step(state: np.ndarray, item: int, inputs: np.ndarray, onehot: bool,
             Wx: tuple, Wrz: tuple, Wh: tuple, b: tuple) -> None:
    """Advance one session by one item, in place. state: (S,) float32; item: item index."""
    gru_step_batch(state.reshape(1, -1), np.array([item], dtype=np.int64), inputs, onehot, Wx, Wrz, Wh, b)


def _select(scores: np.ndarray, k: int, exclude: np.ndarray, available: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    allowed = np.ones(len(scores), dtype=bool) if len(available) == 0 else available.astype(bool)
    allowed[exclude] = False
    cand = np.flatnonzero(allowed)
    order = np.lexsort((cand, -scores[cand]))[:k]
    return cand[order].astype(np.int64), scores[cand[order]].astype(np.float32)


def score_topk(h: np.ndarray, W: np.ndarray, bias: np.ndarray, k: int, exclude: np.ndarray,
               available: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Score all items for one last-layer state and return the best k.

    h: (H_last,) float32. Returns (items (k',) int64, scores (k',) float32), k' = min(k, allowed items).
    """
    scores = _item_matrix_f32(W) @ h + bias
    return _select(scores, k, exclude, available)


def score_topk_batch(hs: np.ndarray, W: np.ndarray, bias: np.ndarray, k: int, exclude: np.ndarray,
                     exclude_offsets: np.ndarray, available: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of B sessions in one pass over the item matrix.

    hs: (B, H_last) float32; session b excludes ``exclude[exclude_offsets[b]:exclude_offsets[b+1]]``
    (exclude_offsets: (B+1,) int64). Returns (items (B, k) int64, scores (B, k) float32); rows with fewer than
    k allowed items are padded with item -1 and score -inf.
    """
    scores = hs @ _item_matrix_f32(W).T + bias
    B = len(hs)
    items = np.full((B, k), -1, dtype=np.int64)
    best = np.full((B, k), -np.inf, dtype=np.float32)
    for s in range(B):
        i, sc = _select(scores[s], k, exclude[exclude_offsets[s]:exclude_offsets[s + 1]], available)
        items[s, :len(i)] = i
        best[s, :len(i)] = sc
    return items, best


def blend_topk(h: np.ndarray, W: np.ndarray, bias: np.ndarray, k: int, exclude: np.ndarray, available: np.ndarray,
               neighbours: np.ndarray, nweights: np.ndarray, w: float) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of the GRU4Rec + item-kNN blend (backend/blend.py): softmax over ALL items of the scores of ``h``
    (exclusions and availability do not change it), plus ``w * nweights[c]`` on item ``neighbours[c]``
    (neighbours: (m,) int64, -1 = none; nweights: (m,) float32, the context item's normalised similarities).
    Returns (items (k',) int64, blend scores (k',) float32) like ``score_topk``."""
    scores = (_item_matrix_f32(W) @ h + bias).astype(np.float64)
    p = np.exp(scores - scores.max())
    p = (p / p.sum()).astype(np.float32)
    keep = neighbours >= 0
    np.add.at(p, neighbours[keep], np.float32(w) * nweights[keep])
    return _select(p, k, exclude, available)


def blend_topk_batch(hs: np.ndarray, W: np.ndarray, bias: np.ndarray, k: int, exclude: np.ndarray,
                     exclude_offsets: np.ndarray, available: np.ndarray, neighbours: np.ndarray,
                     nweights: np.ndarray, context_offsets: np.ndarray,
                     ws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``blend_topk`` of B sessions in one pass over the item matrix: session b excludes
    ``exclude[exclude_offsets[b]:exclude_offsets[b+1]]`` and blends ``ws[b]`` times the neighbours
    ``neighbours[context_offsets[b]:context_offsets[b+1]]`` (with those ``nweights``). Returns (items (B, k) int64,
    scores (B, k) float32), rows padded with item -1 and score -inf like ``score_topk_batch``."""
    B = len(hs)
    items = np.full((B, k), -1, dtype=np.int64)
    best = np.full((B, k), -np.inf, dtype=np.float32)
    for s in range(B):
        c = slice(context_offsets[s], context_offsets[s + 1])
        i, sc = blend_topk(hs[s], W, bias, k, exclude[exclude_offsets[s]:exclude_offsets[s + 1]], available,
                           neighbours[c], nweights[c], float(ws[s]))
        items[s, :len(i)] = i
        best[s, :len(i)] = sc
    return items, best


def rollout(state: np.ndarray, n: int, inputs: np.ndarray, onehot: bool, Wx: tuple, Wrz: tuple, Wh: tuple,
            b: tuple, W: np.ndarray, bias: np.ndarray, exclude: np.ndarray,
            available: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy "up next" sequence of up to n items: pick the best allowed item, feed it to the GRU as if the
    visitor had viewed it, pick again; no item twice. ``state`` (S,) float32 is not modified.

    Returns (items (n',) int64, scores (n',) float32), n' = min(n, allowed items).
    """
    state = state.astype(np.float32, copy=True)
    H_last = Wh[-1].shape[0]
    taken: list[int] = []
    scores: list[float] = []
    for step in range(n):
        excl = np.concatenate([exclude, np.array(taken, dtype=np.int64)])
        i, s = score_topk(state[len(state) - H_last:], W, bias, 1, excl, available)
        if len(i) == 0:
            break
        taken.append(int(i[0]))
        scores.append(float(s[0]))
        if step + 1 < n:
            gru_step(state, int(i[0]), inputs, onehot, Wx, Wrz, Wh, b)
    return np.array(taken, dtype=np.int64), np.array(scores, dtype=np.float32)


def _similarity(vectors: np.ndarray, norms: np.ndarray, categories: np.ndarray, items: np.ndarray,
                item: int) -> np.ndarray:
    """Similarity of ``item`` to each of ``items``: the cosine of their vectors, or, where either vector is zero
    (an item the model holds no vector for), 1.0 for the same category (code >= 0) and 0.0 otherwise."""
    dots = vectors[items].astype(np.float64) @ vectors[item].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = dots / (norms[items] * norms[item])
    same = ((categories[items] >= 0) & (categories[items] == categories[item])).astype(np.float64)
    return np.where((norms[items] > 0) & (norms[item] > 0), cos, same)


def mmr_rerank(candidates, relevance, vectors, norms, categories, diversity, k, max_per_category):
    """Greedy maximal marginal relevance: up to k of ``candidates`` ((m,) int64 item indices) in pick order, as
    (k',) int64 positions into ``candidates``. Each pick maximises
    ``(1 - diversity) * relevance - diversity * (largest similarity to an item already picked)`` (the first pick:
    the most relevant); ties go to the earlier candidate. ``relevance``: (m,) float64 in [0, 1]; ``vectors``:
    (n_items, D) float32 and ``norms`` (n_items,) float64 their lengths; ``categories``: (n_items,) int32 codes, -1
    for none. ``max_per_category`` > 0: a candidate whose category already holds that many picks is skipped
    (items without a category never are). Diversity 0 and no cap: the candidates' own order."""
    m = len(candidates)
    taken = np.zeros(m, dtype=bool)
    maxsim = np.zeros(m, dtype=np.float64)
    out: list[int] = []
    cats = categories[candidates]
    while len(out) < min(k, m):
        score = (1.0 - diversity) * relevance - (diversity * maxsim if out else 0.0)
        ok = ~taken
        if max_per_category > 0:
            picked = cats[out]
            full = np.array([c >= 0 and np.count_nonzero(picked == c) >= max_per_category for c in cats])
            ok &= ~full
        if not ok.any():
            break
        best = int(np.flatnonzero(ok)[np.argmax(score[ok])])
        sim = _similarity(vectors, norms, categories, candidates, int(candidates[best]))
        maxsim = sim if not out else np.maximum(maxsim, sim)
        taken[best] = True
        out.append(best)
    return np.array(out, dtype=np.int64)
