"""The training step of ``reference.ReferenceStep``, fused by hand for a CPU.

With 1-step BPTT the previous hidden state carries no gradient, so the GRU's backward pass is a handful of
elementwise formulas around the transposed products; it is written out here instead of being recorded by a
framework. Every buffer is allocated once (for the largest batch and reused through row views), only the
sampled score block (M x (M + n_sample)) is ever computed, and the item matrices get row-wise updates from
gradients of the used rows only: there is no dense gradient of an item matrix anywhere.

The matrix products go to BLAS through numpy (``np.matmul(..., out=)``); the elementwise stages, the loss and
the optimiser are the kernels of ``ops`` (backend.kernels.training_cpu by default, training_reference to check
them). Backward
formulas, for a layer with output ``out = h' * mask`` and upstream gradient ``dout``::

    dh' = dout * mask
    da_n = dh' (1 - z) (1 - n^2)        da_z = dh' (h - n) z (1 - z)
    d(rh) = da_n @ Wh.T                 da_r = d(rh) * h * r (1 - r)
    dWh = rh.T @ da_n   dWrz = h.T @ [da_r | da_z]   dWx = x.T @ da   db = sum(da)   dx = da @ Wx.T
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

from backend.gru4rec.optimizer import OptimizerState, is_sparse
from backend.gru4rec.params import Hyperparameters
from backend.gru4rec.weights import GRU4RecWeights
from backend.kernels import features_cpu as feature_ops_cpu
from backend.kernels import training_cpu as ops_cpu


class _Layer:
    """Buffers of one GRU layer, (batch_size, ...) float32; a step uses the first M rows."""

    def __init__(self, B: int, in_size: int, H: int):
        f = np.float32
        self.h, self.r, self.z, self.rh, self.n, self.out, self.cand, self.d_rh, self.dout = (
            np.zeros((B, H), f) for _ in range(9))
        self.a = np.zeros((B, 3 * H), f)
        self.g = np.zeros((B, 2 * H), f)
        self.da = np.zeros((B, 3 * H), f)
        self.dWx = np.zeros((in_size, 3 * H), f)
        self.dWrz = np.zeros((H, 2 * H), f)
        self.dWh = np.zeros((H, H), f)
        self.db = np.zeros(3 * H, f)


class FastStep:
    def __init__(self, weights: GRU4RecWeights, optim: OptimizerState, params: Hyperparameters,
                 ops: ModuleType = ops_cpu, feature_ops: ModuleType = feature_ops_cpu):
        self.w, self.opt, self.params, self.ops, self.fops = weights, optim, params, ops, feature_ops
        B, S, N = params.batch_size, params.n_sample, weights.n_items
        C = B + S
        f = np.float32
        mode = weights.mode
        in_size = {"shared": weights.Wy.shape[1], "separate": 0 if weights.E is None else weights.E.shape[1],
                   "onehot": 3 * weights.sizes[0]}[mode]
        sizes = weights.sizes
        self.layers = [_Layer(B, in_size if i == 0 else sizes[i - 1], H) for i, H in enumerate(sizes)]
        self.x = np.zeros((B, in_size), f)                  # layer 0's input rows (after dropout)
        self.Y = np.zeros(C, np.int64)                      # score columns: targets ++ samples
        self.wy_rows = np.zeros(C + B, np.int64)            # Wy rows updated: Y (++ inputs, shared mode)
        self.wy_grads = np.zeros((C + B, sizes[-1]), f)     # their gradients, same order
        self.x_grads = np.zeros((B, in_size), f)            # gradient of the input rows (separate / onehot)
        self.WyY = np.zeros((C, sizes[-1]), f)
        self.byY = np.zeros(C, f)
        self.dby = np.zeros(C, f)
        self.scores = np.zeros(B * C, f)                    # flat: viewed as a contiguous (M, M + S) block
        self.dscores = np.zeros(B * C, f)
        self.features = weights.features if weights.Fy is not None else None
        n_rows = N if self.features is None else max(N, len(weights.Fy))
        self.row_slot = np.full(n_rows, -1, np.int32)       # scratch of the row-wise update
        if self.features is not None:                       # item features: see kernels/features_reference.py
            per_item = int(np.diff(self.features.indptr).max(initial=0))
            self.keep = np.ones(C + B, f)                   # ID part kept (1) or dropped (0), rows = wy_rows
            self.bias_keep = np.ones(C, f)                  # the same for the ID bias (id_dropout_scaling)
            self.f_rows = np.zeros((C + B) * per_item, np.int64)
            self.f_grads = np.zeros(((C + B) * per_item, sizes[-1]), f)
            self.t = 0                                      # steps done: id_keep's hash input
        self.dense_names = [k for k in weights.arrays() if not is_sparse(k, mode)]
        self.row_weight = 1.0 / B                           # the step optimises sum(row losses) / batch_size
        if params.served_training:                          # scratch of mask_seen
            self.seen_cols = np.zeros((B, C), np.uint8)
            self.stamp = np.full(N, -1, np.int64)
            self.token = 0
        self.record_gradients = False
        self.grads: dict[str, np.ndarray] = {}

    def __call__(self, in_items, out_items, samples, src, log_q, mask_embed, masks_hidden, seen=None) -> float:
        """One step (same arguments as ReferenceStep); returns the sum of the M row losses. ``seen`` (with
        params.served_training): (items, pair_start, pair_event) of the step's pairs, the session's seen items
        being items[pair_start:pair_event + 1]: their columns leave the row's negatives (mask_seen)."""
        ops, p, w = self.ops, self.params, self.w
        M, S = len(in_items), len(samples)
        C = M + S
        Y = self.Y[:C]
        Y[:M] = out_items
        Y[M:] = samples

        # --- forward: input rows, GRU layers ---
        x = self.x[:M]
        feats = self.features
        if feats is not None:                               # item vectors: kept ID row + features @ Fy
            rows = self.wy_rows[:C + M]
            rows[:C] = Y
            rows[C:] = in_items
            keep = self.keep[:C + M]
            self.fops.id_keep(rows, self.t, p.seed, p.id_dropout, keep)
            self.t += 1
            bias_keep = keep[:C]
            scale = p.id_scale("train")
            if scale != 1.0:                                # id_dropout_scaling=train: a kept ID row scaled up,
                bias_keep = self.bias_keep[:C]              # its bias not
                bias_keep[...] = keep[:C]
                keep *= scale
            self.fops.gather_item_vectors(w.Wy, keep[C:], w.Fy, feats.indptr, feats.indices, feats.values,
                                          rows[C:], x)
        else:
            ops.gather_rows({"shared": w.Wy, "separate": w.E, "onehot": w.layers[0].Wx}[w.mode], in_items, x)
        if mask_embed.size:
            x *= mask_embed
        for i, (L, W) in enumerate(zip(self.layers, w.layers)):
            h, a = L.h[:M], L.a[:M]
            ops.gather_states(L.out, src, h)       # L.out still holds the previous step's output
            if i == 0 and w.mode == "onehot":
                a[...] = x
            else:
                np.matmul(x, W.Wx, out=a)
            np.matmul(h, W.Wrz, out=L.g[:M])
            ops.gru_gates(a, W.b, L.g[:M], h, L.r[:M], L.z[:M], L.rh[:M])
            np.matmul(L.rh[:M], W.Wh, out=L.cand[:M])
            ops.gru_output(a, L.cand[:M], h, L.z[:M], masks_hidden[i], L.n[:M], L.out[:M])
            x = L.out[:M]

        # --- sampled scores, loss and its gradient ---
        WyY = self.WyY[:C]
        if feats is not None:
            self.fops.gather_item_vectors(w.Wy, keep[:C], w.Fy, feats.indptr, feats.indices, feats.values, Y, WyY)
        else:
            ops.gather_rows(w.Wy, Y, WyY)
        np.take(w.By, Y, out=self.byY[:C])
        if feats is not None:
            self.byY[:C] *= bias_keep                       # the bias is part of the ID: dropped with it
        scores = self.scores[:M * C].reshape(M, C)
        dscores = self.dscores[:M * C].reshape(M, C)
        np.matmul(x, WyY.T, out=scores)
        if seen is not None:
            loss = self._served_loss(seen, Y, scores, log_q, dscores, M, C)
        elif p.loss == "cross-entropy":
            loss = ops.sampled_xe_loss_grad(scores, self.byY[:C], log_q, p.logq, p.elu_alpha, self.row_weight,
                                            dscores, self.dby[:C])
        else:
            loss = ops.sampled_bprmax_loss_grad(scores, self.byY[:C], p.bpreg, p.elu_alpha, self.row_weight,
                                                dscores, self.dby[:C])

        # --- backward ---
        np.matmul(dscores.T, x, out=self.wy_grads[:C])
        np.matmul(dscores, WyY, out=self.layers[-1].dout[:M])
        for i in reversed(range(len(self.layers))):
            L, W = self.layers[i], w.layers[i]
            H = W.size
            h, da = L.h[:M], L.da[:M]
            ops.gru_backward_gates(L.dout[:M], masks_hidden[i], h, L.z[:M], L.n[:M], da)
            np.matmul(da[:, 2 * H:], W.Wh.T, out=L.d_rh[:M])
            ops.gru_backward_reset(L.d_rh[:M], h, L.r[:M], da)
            np.matmul(L.rh[:M].T, da[:, 2 * H:], out=L.dWh)
            np.matmul(h.T, da[:, :2 * H], out=L.dWrz)
            np.sum(da, axis=0, out=L.db)
            if i > 0:
                below = self.layers[i - 1].out[:M]
                np.matmul(below.T, da, out=L.dWx)
                np.matmul(da, W.Wx.T, out=self.layers[i - 1].dout[:M])
            elif w.mode == "onehot":
                np.multiply(da, mask_embed if mask_embed.size else 1.0, out=self.x_grads[:M])
            else:
                np.matmul(self.x[:M].T, da, out=L.dWx)
                dx = self.wy_grads[C:C + M] if w.mode == "shared" else self.x_grads[:M]
                np.matmul(da, W.Wx.T, out=dx)
                if mask_embed.size:
                    dx *= mask_embed

        # --- updates: item matrices at the used rows, dense weights everywhere ---
        arrays = w.arrays()
        if feats is not None:
            self.dby[:C] *= bias_keep
        sparse = [("By", Y, self.dby[:C].reshape(-1, 1))]
        if w.mode == "shared":
            rows = self.wy_rows[:C + M]
            rows[:C] = Y
            rows[C:] = in_items
            grads = self.wy_grads[:C + M]
            if feats is not None:       # the item rows' gradients: to their features, and to the kept ID rows
                n = self.fops.expand_feature_grads(feats.indptr, feats.indices, feats.values, rows, grads,
                                                   self.f_rows, self.f_grads)
                grads *= self.keep[:C + M, None]
                sparse.append(("Fy", self.f_rows[:n], self.f_grads[:n]))
            sparse.append(("Wy", rows, grads))
        else:
            sparse.append(("Wy", Y, self.wy_grads[:C]))
            sparse.append(("E" if w.mode == "separate" else "layer0.Wx", np.asarray(in_items, np.int64),
                           self.x_grads[:M]))
        if self.record_gradients:
            self._record(sparse)
        lr, mom, acc, vel = p.learning_rate, p.momentum, self.opt.acc, self.opt.vel
        for name, rows, grads in sparse:
            cols = grads.shape[1]                        # By as an (N, 1) matrix
            ops.adagrad_momentum_rows(arrays[name].reshape(-1, cols), acc[name].reshape(-1, cols),
                                      vel[name].reshape(-1, cols), rows, grads, lr, mom, self.row_slot)
        for name in self.dense_names:
            ops.adagrad_momentum_dense(arrays[name], acc[name], vel[name], self._grad(name), lr, mom)
        return float(loss)

    def _served_loss(self, seen, Y, scores, log_q, dscores, M: int, C: int) -> float:
        """The sampled loss with the session's seen items left out of each row's negatives (mask_seen)."""
        ops, p = self.ops, self.params
        items, pair_start, pair_event = seen
        cols = self.seen_cols[:M, :C]
        self.token = ops.seen_mask(items, pair_start, pair_event, Y, cols, self.stamp, self.token)
        if p.loss == "cross-entropy":
            return ops.sampled_xe_loss_grad_masked(scores, self.byY[:C], log_q, p.logq, p.elu_alpha,
                                                   self.row_weight, cols, dscores, self.dby[:C])
        return ops.sampled_bprmax_loss_grad_masked(scores, self.byY[:C], p.bpreg, p.elu_alpha, self.row_weight,
                                                   cols, dscores, self.dby[:C])

    def _record(self, sparse) -> None:
        """Dense copies of this step's gradients (tests compare them with the reference's)."""
        arrays = self.w.arrays()
        self.grads = {name: self._grad(name).copy() for name in self.dense_names}
        for name, rows, grads in sparse:
            dense = np.zeros(arrays[name].shape, np.float32)
            np.add.at(dense.reshape(len(dense), -1), rows, grads)
            self.grads[name] = dense

    def _grad(self, name: str) -> np.ndarray:
        layer, kind = name.split(".")
        L = self.layers[int(layer[5:])]
        return {"Wx": L.dWx, "Wrz": L.dWrz, "Wh": L.dWh, "b": L.db}[kind]
