"""One GRU4Rec training step written plainly with torch autograd: the definition the fast step must match.

It reads like the spec: gather the input rows, run the GRU layers (dropout on the input rows and on each
layer's output), score the sampled columns, take the loss, let autograd find the gradients, then apply
Adagrad with momentum to the rows used (duplicates summed) and to the dense weights. Slow on purpose: every
operation is a separate framework call.

Weights and optimizer state stay numpy arrays; on the CPU the torch tensors here share their memory. On a GPU
(``device="cuda"``: the plain-PyTorch-on-a-GPU baseline) they are copies, brought back by ``store``.
"""
from __future__ import annotations

import numpy as np
import torch

from backend.gru4rec.optimizer import OptimizerState, is_sparse
from backend.gru4rec.params import Hyperparameters
from backend.gru4rec.weights import GRU4RecWeights
from backend.kernels import features_reference

EPS_LOG = 1e-24
EPS_ADAGRAD = 1e-6


def xe_loss(r: torch.Tensor, log_q: torch.Tensor, logq: float) -> torch.Tensor:
    """(M,) row losses: -log(softmax(r_i - logq * log Q)_i + 1e-24); the positive of row i is column i."""
    diag = torch.arange(r.shape[0], device=r.device)
    p = torch.softmax(r - logq * log_q, dim=1)
    return -torch.log(p[diag, diag] + EPS_LOG)


def bprmax_loss(r: torch.Tensor, bpreg: float) -> torch.Tensor:
    """(M,) row losses: -log(sum_j s_ij sigmoid(r_ii - r_ij) + 1e-24) + bpreg sum_j s_ij r_ij^2, with s_i the
    softmax of r_i over the columns j != i."""
    M, C = r.shape
    if C == 1:
        return r[:, 0] * 0.0
    diag = torch.arange(M, device=r.device)
    eye = torch.zeros(M, C, dtype=torch.bool, device=r.device)
    eye[diag, diag] = True
    s = torch.softmax(r.masked_fill(eye, float("-inf")), dim=1)
    r_pos = r[diag, diag].unsqueeze(1)
    return -torch.log((s * torch.sigmoid(r_pos - r)).sum(1) + EPS_LOG) + bpreg * (s * r * r).sum(1)


class ReferenceStep:
    def __init__(self, weights: GRU4RecWeights, optim: OptimizerState, params: Hyperparameters,
                 device: str = "cpu"):
        self.w = weights
        self.params = params
        self.dev = dev = torch.device(device)
        self.t = {k: torch.from_numpy(v).to(dev) for k, v in weights.arrays().items()}
        self.acc = {k: torch.from_numpy(v).to(dev) for k, v in optim.acc.items()}
        self.vel = {k: torch.from_numpy(v).to(dev) for k, v in optim.vel.items()}
        self.prev_out = [torch.zeros(0, h, device=dev) for h in weights.sizes]
        self.grads: dict[str, torch.Tensor] = {}
        self.features = weights.features if weights.Fy is not None else None
        self.t_step = 0                                 # steps done: the ID dropout's hash input

    def _item_rows(self, items: torch.Tensor, keep: np.ndarray, grads: list):
        """The item vectors of ``items``: ID rows (leaf) * keep + features @ Fy (leaf rows, one per feature
        entry); ``grads`` gets (matrix name, rows, leaf) for the updates."""
        ids = items.cpu().numpy()
        wy = self.t["Wy"][items].clone().requires_grad_()
        grads.append(("Wy", items, wy))
        out = wy * torch.from_numpy(keep).to(self.dev)[:, None]
        if self.features is None:
            return out
        f = self.features
        lo, hi = f.indptr[ids], f.indptr[ids + 1]
        entry = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)]).astype(np.int64) if len(ids) else \
            np.zeros(0, np.int64)
        owner = torch.from_numpy(np.repeat(np.arange(len(ids)), hi - lo)).to(self.dev)
        feat = torch.from_numpy(f.indices[entry].astype(np.int64)).to(self.dev)
        fy = self.t["Fy"][feat].clone().requires_grad_()
        grads.append(("Fy", feat, fy))
        vals = torch.from_numpy(f.values[entry]).to(self.dev)[:, None]
        return out.index_add(0, owner, fy * vals)

    def store(self, weights: GRU4RecWeights, optim: OptimizerState) -> None:
        """Copy the weights and optimiser state into the numpy arrays (needed on a GPU only)."""
        for name, arr in weights.arrays().items():
            arr[...] = self.t[name].cpu().numpy()
            optim.acc[name][...] = self.acc[name].cpu().numpy()
            optim.vel[name][...] = self.vel[name].cpu().numpy()

    def __call__(self, in_items, out_items, samples, src, log_q, mask_embed, masks_hidden) -> float:
        """One step; returns the sum of the M row losses (the step optimises their mean)."""
        p, t, mode, dev = self.params, self.t, self.w.mode, self.dev
        in_items = torch.from_numpy(np.asarray(in_items, dtype=np.int64)).to(dev)
        Y = torch.cat([torch.from_numpy(np.asarray(out_items, dtype=np.int64)),
                       torch.from_numpy(np.asarray(samples, dtype=np.int64))]).to(dev)
        src = torch.from_numpy(np.asarray(src, dtype=np.int64)).to(dev)
        M = len(in_items)
        # leaves: the rows of the item matrices used in this step, and the dense GRU weights
        input_matrix = {"shared": "Wy", "separate": "E", "onehot": "layer0.Wx"}[mode]
        item_leaves: list = []
        if self.features is not None:                   # item vectors: kept ID rows + features @ Fy
            keep = np.ones(len(Y) + M, np.float32)
            features_reference.id_keep(torch.cat([Y, in_items]).cpu().numpy(), self.t_step, p.seed, p.id_dropout,
                                       keep)
            self.t_step += 1
            bias_keep = keep[:len(Y)].copy()             # id_dropout_scaling=train: a kept ID row scaled up,
            keep = keep * np.float32(p.id_scale("train"))  # its bias not
            wy_rows = self._item_rows(Y, keep[:len(Y)], item_leaves)
            x_rows = self._item_rows(in_items, keep[len(Y):], item_leaves)
        else:
            x_rows = t[input_matrix][in_items].clone().requires_grad_()
            wy_rows = t["Wy"][Y].clone().requires_grad_()
        by_rows = t["By"][Y].clone().requires_grad_()
        dense = {k: v.detach().requires_grad_() for k, v in t.items() if not is_sparse(k, mode)}

        # forward: GRU layers (1-step BPTT: the previous states carry no gradient)
        x = x_rows * torch.from_numpy(mask_embed).to(dev) if mask_embed.size else x_rows
        outs = []
        for i, H in enumerate(self.w.sizes):
            h = torch.zeros(M, H, device=dev)             # a slot that starts a session starts from zero
            h[src >= 0] = self.prev_out[i][src[src >= 0]]
            if i == 0 and mode == "onehot":
                a = x + dense["layer0.b"]
            else:
                a = x @ dense[f"layer{i}.Wx"] + dense[f"layer{i}.b"]
            g = h @ dense[f"layer{i}.Wrz"]
            r = torch.sigmoid(a[:, :H] + g[:, :H])
            z = torch.sigmoid(a[:, H:2 * H] + g[:, H:])
            n = torch.tanh(a[:, 2 * H:] + (r * h) @ dense[f"layer{i}.Wh"])
            x = z * h + (1 - z) * n
            if masks_hidden[i].size:
                x = x * torch.from_numpy(masks_hidden[i]).to(dev)
            outs.append(x)
        if self.features is not None:                   # the bias is part of the ID: dropped with it
            scores = x @ wy_rows.T + by_rows * torch.from_numpy(bias_keep).to(dev)
        else:
            scores = x @ wy_rows.T + by_rows
        if p.elu_alpha > 0:
            scores = torch.nn.functional.elu(scores, alpha=p.elu_alpha)
        if p.loss == "cross-entropy":
            losses = xe_loss(scores, torch.from_numpy(np.asarray(log_q, dtype=np.float32)).to(dev), p.logq)
        else:
            losses = bprmax_loss(scores, p.bpreg)
        (losses.sum() / p.batch_size).backward()          # the configured size, also when the batch shrinks
        self.prev_out = [o.detach() for o in outs]

        # updates: item matrices at the rows used (duplicates summed), dense weights everywhere
        with torch.no_grad():
            self.grads = {k: v.grad for k, v in dense.items()}
            if item_leaves:
                for name in ("Wy", "Fy"):
                    parts = [(rows, leaf.grad) for n, rows, leaf in item_leaves if n == name]
                    self._update_rows(name, torch.cat([r for r, _ in parts]), torch.cat([g for _, g in parts]))
            elif mode == "shared":
                self._update_rows("Wy", torch.cat([Y, in_items]), torch.cat([wy_rows.grad, x_rows.grad]))
            else:
                self._update_rows("Wy", Y, wy_rows.grad)
                self._update_rows(input_matrix, in_items, x_rows.grad)
            self._update_rows("By", Y, by_rows.grad)
            for k, v in dense.items():
                self._adagrad(k, v.grad, None)
        return float(losses.detach().sum())

    def _update_rows(self, name: str, rows: torch.Tensor, grads: torch.Tensor) -> None:
        uniq, inverse = torch.unique(rows, return_inverse=True)
        summed = torch.zeros((len(uniq),) + grads.shape[1:], device=self.dev).index_add_(0, inverse, grads)
        self.grads[name] = torch.zeros_like(self.t[name]).index_put_((uniq,), summed)
        self._adagrad(name, summed, uniq)

    def _adagrad(self, name: str, g: torch.Tensor, rows: torch.Tensor | None) -> None:
        """acc += g^2 ; v = momentum v - lr g / sqrt(acc + 1e-6) ; theta += v (at ``rows``, or everywhere)."""
        p = self.params
        sel = slice(None) if rows is None else rows
        acc = self.acc[name][sel] + g * g
        self.acc[name][sel] = acc
        step = -p.learning_rate * g / torch.sqrt(acc + EPS_ADAGRAD)
        if p.momentum > 0:
            step = p.momentum * self.vel[name][sel] + step
            self.vel[name][sel] = step
        self.t[name][sel] += step
