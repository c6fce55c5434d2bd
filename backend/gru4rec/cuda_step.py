"""The GRU4Rec training step on a GPU: ``fast.FastStep``'s algorithm with torch for the dense GRU parts and the
Numba-CUDA kernels of ``backend.kernels.training_cuda`` for the three hot parts (sampled loss + gradient, row-wise
Adagrad-momentum, and, in ``cuda_train``, the sample store), plus, with item features, those of
``backend.kernels.features_cuda`` (item vectors = kept ID rows + features @ Fy, and the feature rows' gradients).

Everything stays on the device; a step launches about 35 small kernels and never waits for the GPU. The loss
is added to a device accumulator that the loop reads when it reports (``take_loss``). Buffers are allocated once
for the full batch and the kernels get views of them wrapped once (wrapping a tensor costs more than a launch);
a step uses a prefix of each buffer and passes its sizes. The dense GRU weights live in one flat buffer (and so
do their gradients, accumulators, velocities) so that a single launch updates them all. The item matrices get
row-wise updates at the rows the step used; there is no dense gradient of an item matrix.

Under the CUDA simulator (tests) the same code runs with CPU tensors and simulated kernels.
"""
from __future__ import annotations

import numpy as np
import torch

from backend.gru4rec.optimizer import OptimizerState, is_sparse
from backend.gru4rec.params import Hyperparameters
from backend.gru4rec.weights import GRU4RecWeights
from backend.kernels import cuda_loss
from backend.kernels import features_cuda
from backend.kernels import training_cuda as kernels
from backend.kernels.cuda_interop import fixed_types, kernel_array, launch_stream, torch_device
from backend.kernels.cuda_loss import launch_bprmax, launch_xe

_tanh_backward = torch.ops.aten.tanh_backward
_sigmoid_backward = torch.ops.aten.sigmoid_backward


class CudaStep:
    def __init__(self, weights: GRU4RecWeights, optim: OptimizerState, params: Hyperparameters,
                 device: str | None = None):
        dev = self.dev = torch.device(device or torch_device())
        self.params, self.mode, self.sizes = params, weights.mode, weights.sizes
        B, S, N = params.batch_size, params.n_sample, weights.n_items
        arrays = weights.arrays()
        self.names = list(arrays)
        self.dense_names = [k for k in arrays if not is_sparse(k, self.mode)]
        self.sparse_names = [k for k in arrays if is_sparse(k, self.mode)]
        momentum = params.momentum > 0
        # dense GRU weights: views of one flat buffer per kind
        n_dense = sum(arrays[k].size for k in self.dense_names)
        flat = {kind: torch.zeros(n_dense if kind != "vel" or momentum else 0, device=dev)
                for kind in ("param", "grad", "acc", "vel")}
        self.flat = flat
        self.w, self.acc, self.vel, self.grad = {}, {}, {}, {}
        offset = 0
        for k in self.dense_names:
            shape, n = arrays[k].shape, arrays[k].size
            for store, kind in ((self.w, "param"), (self.grad, "grad"), (self.acc, "acc"), (self.vel, "vel")):
                store[k] = flat[kind][offset:offset + n].view(shape) if kind != "vel" or momentum else flat[kind]
            offset += n
        for k in self.sparse_names:       # item matrices; By as an (N, 1) matrix for the row-wise update
            shape = arrays[k].shape if arrays[k].ndim == 2 else (N, 1)
            self.w[k] = torch.zeros(shape, device=dev)
            self.acc[k] = torch.zeros(shape, device=dev)
            self.vel[k] = torch.zeros(shape if momentum else (0, shape[1]), device=dev)
        self.load(weights, optim)

        H = self.sizes[-1]
        C_max = B + S
        in_size = {"shared": H, "separate": 0 if weights.E is None else weights.E.shape[1],
                   "onehot": 3 * self.sizes[0]}[self.mode]
        self.input_name = {"shared": "Wy", "separate": "E", "onehot": "layer0.Wx"}[self.mode]
        i64 = dict(dtype=torch.int64, device=dev)
        self.rows = torch.zeros(C_max + B, **i64)          # Wy rows: Y = targets ++ samples (++ inputs, shared)
        self.in_rows = torch.zeros(B, **i64)               # rows of E / layer0.Wx (separate, onehot)
        self.wy_grads = torch.zeros(C_max + B, H, device=dev)
        self.in_grads = torch.zeros(B, in_size, device=dev)
        self.scores = torch.zeros(B * C_max, device=dev)   # flat: a contiguous (M, C) block, then its gradient
        self.by_y = torch.zeros(C_max, device=dev)
        self.dby = torch.zeros(C_max, device=dev)
        self.log_q = torch.zeros(C_max, device=dev)        # logQ of the score columns (XE); see log_q_buffer
        self.row_loss = torch.zeros(B, device=dev)
        self.loss_sum = torch.zeros(1, dtype=torch.float64, device=dev)
        self.features = feats = weights.features if weights.Fy is not None else None
        n_rows = N if feats is None else max(N, len(weights.Fy))
        self.row_slot = torch.full((n_rows,), -1, dtype=torch.int32, device=dev)
        if feats is not None:             # item features: see kernels/features_cuda.py
            self.per_item = int(np.diff(feats.indptr).max(initial=0))
            self.csr = [torch.from_numpy(np.ascontiguousarray(a)).to(dev)
                        for a in (feats.indptr, feats.indices, feats.values)]
            self.keep = torch.ones(C_max + B, device=dev)       # ID row kept (1) or dropped (0), rows = self.rows
            self.id_step = torch.zeros(1, dtype=torch.int64, device=dev)   # steps done: id_keep's hash input
            self.x_rows = torch.zeros(B, H, device=dev)         # the input item vectors
            self.wy_y = torch.zeros(C_max, H, device=dev)       # the score columns' item vectors
            K_f = (C_max + B) * self.per_item                   # feature gradients: fixed places, -1 unused
            self.f_rows = torch.full((K_f,), -1, **i64)
            self.f_grads = torch.zeros(K_f, H, device=dev)
        # a layer's states: rows of the previous step, and a last row of zeros (index B) for session starts
        self.states = [torch.zeros(B + 1, h, device=dev) for h in self.sizes]
        self.zero_row = B
        self.k = self._wrap()
        # this step's launches always pass the same buffers: the kernels skip numba's type dispatch
        self.loss_kernels = fixed_types(cuda_loss.KERNELS)
        self.update_kernels = fixed_types(kernels.KERNELS)
        self.feature_kernels = fixed_types(features_cuda.KERNELS)
        self.record_gradients = False
        self.grads: dict[str, np.ndarray] = {}

    def _wrap(self) -> dict:
        """Kernel views of the buffers, made once."""
        k = {name: kernel_array(t) for name, t in (
            ("rows", self.rows), ("in_rows", self.in_rows), ("wy_grads", self.wy_grads),
            ("in_grads", self.in_grads), ("scores", self.scores), ("by_y", self.by_y), ("dby", self.dby),
            ("dby_col", self.dby.view(-1, 1)), ("row_loss", self.row_loss), ("loss_sum", self.loss_sum),
            ("row_slot", self.row_slot), ("log_q", self.log_q))}
        if self.features is not None:
            k.update({name: kernel_array(t) for name, t in (
                ("keep", self.keep), ("id_step", self.id_step), ("x_rows", self.x_rows), ("wy_y", self.wy_y),
                ("f_rows", self.f_rows), ("f_grads", self.f_grads))})
            k["csr"] = tuple(kernel_array(t) for t in self.csr)
        for kind, t in self.flat.items():
            k["dense." + kind] = kernel_array(t)
        for name in self.sparse_names:
            k[name] = tuple(kernel_array(d[name]) for d in (self.w, self.acc, self.vel))
        return k

    # --- weights in and out ---

    def load(self, weights: GRU4RecWeights, optim: OptimizerState) -> None:
        arrays = weights.arrays()
        for k in self.names:
            self.w[k].copy_(torch.from_numpy(np.asarray(arrays[k])).view(self.w[k].shape))
            self.acc[k].copy_(torch.from_numpy(optim.acc[k]).view(self.acc[k].shape))
            if self.params.momentum > 0:
                self.vel[k].copy_(torch.from_numpy(optim.vel[k]).view(self.vel[k].shape))

    def store(self, weights: GRU4RecWeights, optim: OptimizerState) -> None:
        """Copy the device's weights and optimiser state into the numpy ones (waits for the GPU)."""
        arrays = weights.arrays()
        for k in self.names:
            arrays[k][...] = self.w[k].cpu().numpy().reshape(arrays[k].shape)
            optim.acc[k][...] = self.acc[k].cpu().numpy().reshape(optim.acc[k].shape)
            if self.params.momentum > 0:
                optim.vel[k][...] = self.vel[k].cpu().numpy().reshape(optim.vel[k].shape)

    def take_loss(self) -> float:
        """The sum of the row losses since the last call (waits for the GPU)."""
        value = float(self.loss_sum.item())
        self.loss_sum.zero_()
        return value

    def log_q_buffer(self, C: int) -> torch.Tensor:
        """The step's own logQ buffer, (C,): a loop that writes a step's logQ here saves a copy."""
        return self.log_q[:C]

    # --- the step ---

    def __call__(self, in_items, out_items, samples, src, log_q, mask_embed, masks_hidden) -> float:
        """One step with ``FastStep``'s host arguments (tests): uploads them, runs, returns the loss sum."""
        dev = self.dev

        def up(a, dtype=None):
            return torch.from_numpy(np.ascontiguousarray(a, dtype=dtype)).to(dev)

        src = np.asarray(src)
        state_rows = np.where(src < 0, self.zero_row, src).astype(np.int64)
        self.take_loss()
        self.run(up(in_items, np.int64), up(out_items, np.int64), up(samples, np.int64), up(state_rows),
                 up(log_q, np.float32), up(mask_embed), [up(m) for m in masks_hidden])
        return self.take_loss()

    def run(self, in_items, out_items, samples, state_rows, log_q, mask_embed, masks_hidden) -> None:
        """One step on device tensors: in_items, out_items (M,) int64; samples (S,) int; state_rows (M,) int64
        (a previous row, or ``zero_row`` for a session start); log_q (M + S,) float32, None when logq == 0;
        masks (M, width) or empty. The loss goes to the device accumulator."""
        p, w, mode = self.params, self.w, self.mode
        M, S = in_items.shape[0], samples.shape[0]
        C = M + S
        rows = self.rows
        rows[:M].copy_(out_items)
        rows[M:C].copy_(samples)
        Y = rows[:C]
        if mode == "shared":
            rows[C:C + M].copy_(in_items)
        else:
            self.in_rows[:M].copy_(in_items)
        k, stream = self.k, launch_stream()
        feats = self.features is not None
        if feats:                         # item vectors: kept ID row + features @ Fy (kernels/features_cuda.py)
            fk = self.feature_kernels
            features_cuda.launch_id_keep(k["rows"], 0, C + M, k["id_step"], p.seed, p.id_dropout, k["keep"], stream,
                                         fk)
            self.id_step.add_(1)
            features_cuda.launch_gather(k["Wy"][0], k["keep"], k["Fy"][0], *k["csr"], k["rows"], C, M, k["x_rows"],
                                        stream, fk)
            x_in = self.x_rows[:M]
        else:
            x_in = torch.index_select(w[self.input_name], 0, in_items)
        x = x_in * mask_embed if mask_embed.numel() else x_in

        # --- forward: GRU layers (torch) ---
        saved = []
        for i, H in enumerate(self.sizes):
            b, Wrz, Wh = w[f"layer{i}.b"], w[f"layer{i}.Wrz"], w[f"layer{i}.Wh"]
            h = torch.index_select(self.states[i], 0, state_rows)
            a = x + b if (i == 0 and mode == "onehot") else torch.addmm(b, x, w[f"layer{i}.Wx"])
            rz = torch.sigmoid(torch.addmm(a[:, :2 * H], h, Wrz))
            r, z = rz[:, :H], rz[:, H:]
            rh = r * h
            n = torch.tanh(torch.addmm(a[:, 2 * H:], rh, Wh))
            out = torch.lerp(n, h, z)                       # z h + (1 - z) n
            if masks_hidden[i].numel():
                out = out * masks_hidden[i]
            self.states[i][:M].copy_(out)
            saved.append((x, h, r, z, rh, n))
            x = out

        # --- sampled scores -> loss and gradient (Numba-CUDA, in place) ---
        torch.index_select(w["By"].view(-1), 0, Y, out=self.by_y[:C])
        if feats:
            features_cuda.launch_gather(k["Wy"][0], k["keep"], k["Fy"][0], *k["csr"], k["rows"], 0, C, k["wy_y"],
                                        stream, self.feature_kernels)
            WyY = self.wy_y[:C]
            self.by_y[:C].mul_(self.keep[:C])           # the bias is part of the ID: dropped with it
        else:
            WyY = torch.index_select(w["Wy"], 0, Y)
        scores = self.scores[:M * C].view(M, C)
        torch.mm(x, WyY.t(), out=scores)
        if p.loss == "cross-entropy":
            if log_q is not None and log_q.data_ptr() != self.log_q.data_ptr():
                self.log_q[:C].copy_(log_q)
            logq = 0.0 if log_q is None else p.logq
            launch_xe(k["scores"], k["scores"], M, C, k["by_y"], k["log_q"], logq, p.elu_alpha,
                      1.0 / p.batch_size, k["dby"], k["row_loss"], k["loss_sum"], stream, self.loss_kernels)
        else:
            launch_bprmax(k["scores"], k["scores"], M, C, k["by_y"], p.bpreg, p.elu_alpha, 1.0 / p.batch_size,
                          k["dby"], k["row_loss"], k["loss_sum"], stream, self.loss_kernels)
        dscores = scores
        torch.mm(dscores.t(), x, out=self.wy_grads[:C])
        dout = torch.mm(dscores, WyY)

        # --- backward through the GRU layers (1-step BPTT) ---
        for i in reversed(range(len(self.sizes))):
            x_below, h, r, z, rh, n = saved[i]
            H = self.sizes[i]
            g = self.grad
            d = dout * masks_hidden[i] if masks_hidden[i].numel() else dout
            da_n = _tanh_backward(d - d * z, n)
            da_z = _sigmoid_backward(d * (h - n), z)
            da_r = _sigmoid_backward(torch.mm(da_n, w[f"layer{i}.Wh"].t()) * h, r)
            da = torch.cat((da_r, da_z, da_n), dim=1)
            torch.mm(rh.t(), da_n, out=g[f"layer{i}.Wh"])
            torch.mm(h.t(), da[:, :2 * H], out=g[f"layer{i}.Wrz"])
            torch.sum(da, dim=0, out=g[f"layer{i}.b"])
            if i == 0 and mode == "onehot":           # the input rows are rows of layer0.Wx
                self.in_grads[:M].copy_(da)
                if mask_embed.numel():
                    self.in_grads[:M].mul_(mask_embed)
                continue
            torch.mm(x_below.t(), da, out=g[f"layer{i}.Wx"])
            if i > 0:
                dout = torch.mm(da, w[f"layer{i}.Wx"].t())
                continue
            dx = self.wy_grads[C:C + M] if mode == "shared" else self.in_grads[:M]
            torch.mm(da, w["layer0.Wx"].t(), out=dx)
            if mask_embed.numel():
                dx.mul_(mask_embed)

        # --- updates (Numba-CUDA): item matrices at the used rows, dense weights in one launch ---
        K_wy = C + M if mode == "shared" else C
        sparse = [("Wy", "rows", "wy_grads", K_wy), ("By", "rows", "dby_col", C)]
        if feats:                         # the item rows' gradients: to their features, and to the kept ID rows
            features_cuda.launch_expand(*k["csr"], k["rows"], k["wy_grads"], K_wy, self.per_item, k["f_rows"],
                                        k["f_grads"], stream, self.feature_kernels)
            self.wy_grads[:K_wy].mul_(self.keep[:K_wy, None])
            self.dby[:C].mul_(self.keep[:C])
            sparse.append(("Fy", "f_rows", "f_grads", K_wy * self.per_item))
        if mode != "shared":
            sparse.append((self.input_name, "in_rows", "in_grads", M))
        if self.record_gradients:
            self._record(sparse)
        lr, mom = p.learning_rate, p.momentum
        for name, rows_key, grads_key, K in sparse:
            param, acc, vel = k[name]
            kernels.launch_adagrad_rows(param, acc, vel, k[rows_key], k[grads_key], K, lr, mom, k["row_slot"],
                                        stream, self.update_kernels)
        kernels.launch_adagrad_dense(k["dense.param"], k["dense.acc"], k["dense.vel"], k["dense.grad"], lr, mom,
                                     stream, self.update_kernels)

    def _record(self, sparse) -> None:
        """Host copies of this step's gradients, item matrices as dense arrays (tests)."""
        self.grads = {name: self.grad[name].cpu().numpy().copy() for name in self.dense_names}
        bufs = {"rows": self.rows, "in_rows": self.in_rows, "wy_grads": self.wy_grads,
                "in_grads": self.in_grads, "dby_col": self.dby.view(-1, 1)}
        if self.features is not None:
            bufs.update(f_rows=self.f_rows, f_grads=self.f_grads)
        for name, rows_key, grads_key, K in sparse:
            rows, grads = bufs[rows_key][:K], bufs[grads_key][:K]
            used = rows >= 0                           # the feature gradients' unused places are -1
            dense = torch.zeros_like(self.w[name]).index_add_(0, rows[used], grads[used])
            self.grads[name] = dense.cpu().numpy().reshape(-1) if name == "By" else dense.cpu().numpy()
