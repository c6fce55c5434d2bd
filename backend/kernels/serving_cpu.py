"""Serving kernels compiled with Numba for the CPU: same names, arguments and results as ``reference.py``
(read its docstring for the conventions on states, weights, exclusions and availability).

Every kernel is serial and releases the GIL (``nogil=True``): concurrent requests run in a thread pool, one
request per thread. ``parallel=True`` is avoided on purpose: Numba's default threading layer aborted the server
under concurrent calls (../shared/docs/numba-notes.md). ``cache=True`` keeps compiled code on disk, so a restart
loads it in a fraction of a second; nothing here may call ``numba.get_num_threads()`` (it disables the cache).

Scoring is fused: one pass over the item matrix computes each item's score and pushes it into a size-k min-heap
(a partial selection, never a sort of all items). The fast-math flags allow reordering float32 sums (so the
dot products vectorise) but keep infinities and NaNs meaningful.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

FASTMATH = {"reassoc", "contract", "arcp", "nsz"}
JIT = dict(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy")


@intrinsic
def _half_bits_to_float(typingctx, bits):
    """float16 bits (uint16) -> float32 by LLVM ``fpext``: numba has no float16 type on the CPU."""
    if bits != types.uint16:
        return None

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return types.float32(types.uint16), codegen


def _as_f32(x):
    """float32 of ``x``: a float, or float16 bits held in a uint16 (the float16 item matrix). Jitted code gets the
    overload below (numba has no float16 on the CPU); this is the same in plain Python."""
    if isinstance(x, (np.uint16, np.ndarray)) and np.asarray(x).dtype == np.uint16:
        return np.asarray(x).view(np.float16).astype(np.float32)[()]
    return np.float32(x)


@overload(_as_f32, inline="always")
def _as_f32_impl(x):
    if x == types.uint16:
        return lambda x: _half_bits_to_float(x)
    if isinstance(x, types.Float):
        return lambda x: np.float32(x)
    return None


# ---------------------------------------------------------------- GRU step

@njit(**JIT)
def _sigmoid(x):
    return np.float32(1.0) / (np.float32(1.0) + np.float32(math.exp(-x)))


@njit(**JIT)
def _accumulate(out, x, W):
    """out (B, N) += x (B, K) @ W (K, N): rows of W read once for all B sessions, inner loop contiguous."""
    B, K = x.shape
    N = W.shape[1]
    for k in range(K):
        for s in range(B):
            xk = x[s, k]
            for j in range(N):
                out[s, j] += xk * W[k, j]


@njit(**JIT)
def gru_step_batch(states, items, inputs, onehot, Wx, Wrz, Wh, b):
    B = states.shape[0]
    off = 0
    x = np.empty((B, 0), dtype=np.float32)
    for l in range(len(Wh)):
        H = Wh[l].shape[0]
        h = np.ascontiguousarray(states[:, off:off + H])
        a = np.empty((B, 3 * H), dtype=np.float32)
        for s in range(B):
            a[s, :] = b[l]
        if l == 0:
            if onehot:
                for s in range(B):
                    for j in range(3 * H):
                        a[s, j] += inputs[items[s], j]
            else:
                x0 = np.empty((B, inputs.shape[1]), dtype=np.float32)
                for s in range(B):
                    x0[s, :] = inputs[items[s]]
                _accumulate(a, x0, Wx[l])
        else:
            _accumulate(a, x, Wx[l])
        g = np.zeros((B, 2 * H), dtype=np.float32)
        _accumulate(g, h, Wrz[l])
        rh = np.empty((B, H), dtype=np.float32)
        z = np.empty((B, H), dtype=np.float32)
        for s in range(B):
            for j in range(H):
                rh[s, j] = _sigmoid(a[s, j] + g[s, j]) * h[s, j]
                z[s, j] = _sigmoid(a[s, H + j] + g[s, H + j])
        c = np.ascontiguousarray(a[:, 2 * H:])
        _accumulate(c, rh, Wh[l])
        new = np.empty((B, H), dtype=np.float32)
        for s in range(B):
            for j in range(H):
                new[s, j] = z[s, j] * h[s, j] + (np.float32(1.0) - z[s, j]) * np.float32(math.tanh(c[s, j]))
        states[:, off:off + H] = new
        x = new
        off += H


@njit(**JIT)
def gru_step(state, item, inputs, onehot, Wx, Wrz, Wh, b):
    items = np.empty(1, dtype=np.int64)
    items[0] = item
    gru_step_batch(state.reshape((1, state.shape[0])), items, inputs, onehot, Wx, Wrz, Wh, b)


# ---------------------------------------------------------------- fused scoring + top-k

@njit(**JIT)
def _worse(s1, i1, s2, i2):
    return s1 < s2 or (s1 == s2 and i1 > i2)


@njit(**JIT)
def _sift_down(hs, hi, size, pos):
    """Restore the min-heap (root = worst entry) below ``pos``."""
    while True:
        c = 2 * pos + 1
        if c >= size:
            return
        if c + 1 < size and _worse(hs[c + 1], hi[c + 1], hs[c], hi[c]):
            c += 1
        if not _worse(hs[c], hi[c], hs[pos], hi[pos]):
            return
        hs[c], hs[pos] = hs[pos], hs[c]
        hi[c], hi[pos] = hi[pos], hi[c]
        pos = c


@njit(**JIT)
def _push(hs, hi, size, cap, s, i):
    """Offer item i with score s to a heap of ``size`` entries (capacity ``cap``); returns the new size.
    Items arrive in increasing index order, so an equal score never beats an entry already held."""
    if size < cap:
        pos = size
        hs[pos] = s
        hi[pos] = i
        while pos > 0:
            parent = (pos - 1) // 2
            if not _worse(hs[pos], hi[pos], hs[parent], hi[parent]):
                break
            hs[pos], hs[parent] = hs[parent], hs[pos]
            hi[pos], hi[parent] = hi[parent], hi[pos]
            pos = parent
        return size + 1
    if s > hs[0]:
        hs[0] = s
        hi[0] = i
        _sift_down(hs, hi, size, 0)
    return size


@njit(**JIT)
def _finish(hs, hi, size, k, exclude_sorted, out_i, out_s):
    """Sort the heap best first, drop excluded items, write at most k into out_i/out_s; returns the count."""
    by_index = np.argsort(hi[:size])
    ts = hs[:size][by_index]
    ti = hi[:size][by_index]
    best_first = np.argsort(-ts, kind="mergesort")  # stable: equal scores stay in index order
    ts = ts[best_first]
    ti = ti[best_first]
    n = 0
    for a in range(size):
        if n == k:
            break
        e = np.searchsorted(exclude_sorted, ti[a])
        if e < len(exclude_sorted) and exclude_sorted[e] == ti[a]:
            continue
        out_i[n] = ti[a]
        out_s[n] = ts[a]
        n += 1
    return n


BATCH_BLOCK = 64  # items scored by every session of a batch while the rows are in cache
BLOCK = 256  # items scored into a small buffer before the (branchy) heap pass: keeps the dot loop tight


@njit(**JIT)
def _topk_into(h, W, bias, k, exclude, available, out_i, out_s):
    cap = k + len(exclude)  # the best k allowed items are among the best k + |exclude| available ones
    hs = np.empty(cap, dtype=np.float32)
    hi = np.empty(cap, dtype=np.int64)
    size = 0
    masked = len(available) > 0
    n, D = W.shape
    buf = np.empty(BLOCK, dtype=np.float32)
    for j0 in range(0, n, BLOCK):
        m = min(BLOCK, n - j0)
        for t in range(m):
            acc = np.float32(0.0)
            for d in range(D):
                acc += _as_f32(W[j0 + t, d]) * h[d]
            buf[t] = acc + bias[j0 + t]
        for t in range(m):
            if size == cap and buf[t] <= hs[0]:
                continue
            if masked and available[j0 + t] == 0:
                continue
            size = _push(hs, hi, size, cap, buf[t], j0 + t)
    return _finish(hs, hi, size, k, np.sort(exclude), out_i, out_s)


@njit(**JIT)
def score_topk(h, W, bias, k, exclude, available):
    out_i = np.empty(k, dtype=np.int64)
    out_s = np.empty(k, dtype=np.float32)
    n = _topk_into(h, W, bias, k, exclude, available, out_i, out_s)
    return out_i[:n].copy(), out_s[:n].copy()


@njit(**JIT)
def _score_block(W, bias, hs, j0, m, rows, out):
    """out[s, t] = the score of item j0 + t for session s (t < m); the block's rows, as float32, stay in cache
    (``rows``) while every session scores them."""
    B, D = hs.shape
    for t in range(m):
        for d in range(D):
            rows[t, d] = _as_f32(W[j0 + t, d])
    for s in range(B):
        for t in range(m):
            acc = np.float32(0.0)
            for d in range(D):
                acc += rows[t, d] * hs[s, d]
            out[s, t] = acc + bias[j0 + t]


@njit(**JIT)
def score_topk_batch(hs, W, bias, k, exclude, exclude_offsets, available):
    B, D = hs.shape
    caps = np.empty(B, dtype=np.int64)
    for s in range(B):
        caps[s] = k + exclude_offsets[s + 1] - exclude_offsets[s]
    cap_max = caps.max() if B > 0 else k
    heap_s = np.empty((B, cap_max), dtype=np.float32)
    heap_i = np.empty((B, cap_max), dtype=np.int64)
    sizes = np.zeros(B, dtype=np.int64)
    masked = len(available) > 0
    n = W.shape[0]
    buf = np.empty((B, BATCH_BLOCK), dtype=np.float32)
    rows = np.empty((BATCH_BLOCK, D), dtype=np.float32)
    for j0 in range(0, n, BATCH_BLOCK):
        m = min(BATCH_BLOCK, n - j0)
        _score_block(W, bias, hs, j0, m, rows, buf)
        for s in range(B):
            for t in range(m):
                if sizes[s] == caps[s] and buf[s, t] <= heap_s[s, 0]:
                    continue
                if masked and available[j0 + t] == 0:
                    continue
                sizes[s] = _push(heap_s[s], heap_i[s], sizes[s], caps[s], buf[s, t], j0 + t)
    items = np.full((B, k), -1, dtype=np.int64)
    scores = np.full((B, k), -np.inf, dtype=np.float32)
    for s in range(B):
        excl = np.sort(exclude[exclude_offsets[s]:exclude_offsets[s + 1]])
        _finish(heap_s[s], heap_i[s], sizes[s], k, excl, items[s], scores[s])
    return items, scores


@njit(**JIT)
def _blend_select(scores, top, k, exclude, available, neighbours, nweights, w):
    """The blend's top-k from one session's raw GRU4Rec scores (over every item; overwritten) whose maximum is
    ``top``: softmax, plus ``w * nweights`` on ``neighbours``, then the allowed best k."""
    n = len(scores)
    total = 0.0
    for j in range(n):
        e = np.float32(math.exp(scores[j] - top))
        scores[j] = e
        total += e
    inv = np.float32(1.0 / total)
    for j in range(n):
        scores[j] *= inv
    wf = np.float32(w)
    for c in range(len(neighbours)):
        if neighbours[c] >= 0:
            scores[neighbours[c]] += wf * nweights[c]
    cap = k + len(exclude)
    hs = np.empty(cap, dtype=np.float32)
    hi = np.empty(cap, dtype=np.int64)
    size = 0
    masked = len(available) > 0
    for j in range(n):
        if size == cap and scores[j] <= hs[0]:
            continue
        if masked and available[j] == 0:
            continue
        size = _push(hs, hi, size, cap, scores[j], j)
    out_i = np.empty(k, dtype=np.int64)
    out_s = np.empty(k, dtype=np.float32)
    m = _finish(hs, hi, size, k, np.sort(exclude), out_i, out_s)
    return out_i[:m].copy(), out_s[:m].copy()


@njit(**JIT)
def blend_topk(h, W, bias, k, exclude, available, neighbours, nweights, w):
    n, D = W.shape
    scores = np.empty(n, dtype=np.float32)
    top = -np.inf
    for j in range(n):
        acc = np.float32(0.0)
        for d in range(D):
            acc += _as_f32(W[j, d]) * h[d]
        s = acc + bias[j]
        scores[j] = s
        if s > top:
            top = s
    return _blend_select(scores, top, k, exclude, available, neighbours, nweights, w)


@njit(**JIT)
def blend_topk_batch(hs, W, bias, k, exclude, exclude_offsets, available, neighbours, nweights,
                     context_offsets, ws):
    B, D = hs.shape
    n = W.shape[0]
    scores = np.empty((B, n), dtype=np.float32)
    tops = np.full(B, -np.inf, dtype=np.float32)
    rows = np.empty((BATCH_BLOCK, D), dtype=np.float32)
    buf = np.empty((B, BATCH_BLOCK), dtype=np.float32)
    for j0 in range(0, n, BATCH_BLOCK):
        m = min(BATCH_BLOCK, n - j0)
        _score_block(W, bias, hs, j0, m, rows, buf)
        for s in range(B):
            for t in range(m):
                v = buf[s, t]
                scores[s, j0 + t] = v
                if v > tops[s]:
                    tops[s] = v
    items = np.full((B, k), -1, dtype=np.int64)
    best = np.full((B, k), -np.inf, dtype=np.float32)
    for s in range(B):
        c0, c1 = context_offsets[s], context_offsets[s + 1]
        got_i, got_s = _blend_select(scores[s], tops[s], k, exclude[exclude_offsets[s]:exclude_offsets[s + 1]],
                                     available, neighbours[c0:c1], nweights[c0:c1], ws[s])
        items[s, :len(got_i)] = got_i
        best[s, :len(got_s)] = got_s
    return items, best


# ---------------------------------------------------------------- "up next" sequences

@njit(**JIT)
def rollout(state, n, inputs, onehot, Wx, Wrz, Wh, b, W, bias, exclude, available):
    state = state.copy()
    H_last = Wh[len(Wh) - 1].shape[0]
    S = state.shape[0]
    excl = np.empty(len(exclude) + n, dtype=np.int64)
    excl[:len(exclude)] = exclude
    m = len(exclude)
    out_i = np.empty(n, dtype=np.int64)
    out_s = np.empty(n, dtype=np.float32)
    one_i = np.empty(1, dtype=np.int64)
    one_s = np.empty(1, dtype=np.float32)
    taken = 0
    for step in range(n):
        if _topk_into(state[S - H_last:], W, bias, 1, excl[:m], available, one_i, one_s) == 0:
            break
        out_i[taken] = one_i[0]
        out_s[taken] = one_s[0]
        taken += 1
        excl[m] = one_i[0]
        m += 1
        if step + 1 < n:
            gru_step(state, one_i[0], inputs, onehot, Wx, Wrz, Wh, b)
    return out_i[:taken].copy(), out_s[:taken].copy()


@njit(**JIT)
def _similarity(vectors, norms, categories, i, j):
    if norms[i] > 0.0 and norms[j] > 0.0:
        dot = 0.0
        for d in range(vectors.shape[1]):
            dot += np.float64(vectors[i, d]) * np.float64(vectors[j, d])
        return dot / (norms[i] * norms[j])
    return 1.0 if categories[i] >= 0 and categories[i] == categories[j] else 0.0


@njit(**JIT)
def mmr_rerank(candidates, relevance, vectors, norms, categories, diversity, k, max_per_category):
    m = candidates.shape[0]
    size = min(k, m)
    out = np.empty(size, dtype=np.int64)
    picked_cats = np.empty(size, dtype=np.int32)
    taken = np.zeros(m, dtype=np.uint8)
    maxsim = np.zeros(m, dtype=np.float64)
    count = 0
    while count < size:
        best, best_s = -1, 0.0
        for c in range(m):
            if taken[c]:
                continue
            if max_per_category > 0:
                cat = categories[candidates[c]]
                if cat >= 0:
                    same = 0
                    for j in range(count):
                        if picked_cats[j] == cat:
                            same += 1
                    if same >= max_per_category:
                        continue
            s = (1.0 - diversity) * relevance[c]
            if count > 0:
                s -= diversity * maxsim[c]
            if best < 0 or s > best_s:
                best, best_s = c, s
        if best < 0:
            break
        taken[best] = 1
        out[count] = best
        picked_cats[count] = categories[candidates[best]]
        count += 1
        if diversity > 0.0:
            b = candidates[best]
            for c in range(m):
                if not taken[c]:
                    sim = _similarity(vectors, norms, categories, candidates[c], b)
                    if count == 1 or sim > maxsim[c]:
                        maxsim[c] = sim
    return out[:count]
