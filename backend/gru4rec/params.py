"""Hyperparameters with the names GRU4Rec users know, parameter strings and the published presets (spec §7).

A parameter string is a comma-separated list of presets and ``name=value`` pairs, applied left to right:
``diginetica`` or ``diginetica,n_epochs=5`` or
``loss=bpr-max,final_act=elu-1,layers=512,batch_size=128,...``. Several layers: ``layers=100/100``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

from backend.errors import UpnextError

LOSSES = ("cross-entropy", "bpr-max")
LEGACY_LOSSES = ("top1", "top1-max", "bpr", "xe_logit")


FEATURE_FIELDS = ("item_features", "id_dropout", "feature_min_count", "title_buckets", "id_dropout_scaling")
ID_DROPOUT_SCALINGS = ("off", "train", "serve")


class ParamsError(UpnextError, ValueError):
    """A parameter string or value that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Hyperparameters:
    loss: str = "cross-entropy"
    final_act: str = ""                  # "" = by loss: linear for cross-entropy, elu-1 for bpr-max
    layers: tuple[int, ...] = (100,)
    batch_size: int = 32
    dropout_p_embed: float = 0.0
    dropout_p_hidden: float = 0.0
    learning_rate: float = 0.1
    momentum: float = 0.0
    n_sample: int = 2048
    sample_alpha: float = 0.75
    bpreg: float = 0.0
    logq: float = 0.0
    embedding: int = 0                   # > 0: a separate input embedding of this size
    constrained_embedding: bool = True   # shared mode: the input vector of item i IS Wy[i] (every best setting)
    n_epochs: int = 10
    sample_store_size: int = 10_000_000  # ids drawn ahead; regenerated when used up
    seed: int = 42
    # --- item features (issue 15; backend/item_features.py): item vector = ID vector + features @ Fy ---
    item_features: bool = False          # False: the model, its artifact and its numbers are exactly as before
    id_dropout: float = 0.0              # per item per mini-batch, the ID part is left out with this probability
    feature_min_count: int = 2           # a feature token is kept when this many items have it
    title_buckets: int = 1024            # hashed title words
    # id_dropout as dropout proper: a trained item's ID row scaled so that its vector (ID + features) lives on
    # the scale training saw on average, like a cold item's features-only one. "train": a kept ID row is scaled
    # by 1/(1 - id_dropout) while training (inverted dropout); "serve": the ID row is scaled by 1 - id_dropout in
    # the item vectors evaluation and serving use (the artifact's Wy). The ID bias is dropped with the ID while
    # training and never scaled. "off": as before
    id_dropout_scaling: str = "off"
    # --- training for the served setting (issue 14) ---
    mask_seen: bool = False              # served setting: the session's seen items are never a pair's negatives
    _explicit: frozenset = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        check = _Checker()
        check(self.loss in LOSSES, "loss", f"one of {', '.join(LOSSES)}"
              + (" (the legacy losses are not supported)" if self.loss in LEGACY_LOSSES else ""), self.loss)
        check(self.final_act in ("", "linear", "softmax") or _elu_alpha(self.final_act) is not None,
              "final_act", "linear, softmax (= linear; the softmax is the loss's) or elu-X with X > 0",
              self.final_act)
        check(len(self.layers) >= 1 and all(0 < h <= 16384 for h in self.layers), "layers",
              "one or more sizes in 1..16384 (like 100 or 100/100)", self.layers)
        check(0 < self.batch_size <= 65536, "batch_size", "in 1..65536", self.batch_size)
        for name in ("dropout_p_embed", "dropout_p_hidden"):
            check(0.0 <= getattr(self, name) < 1.0, name, "in [0, 1)", getattr(self, name))
        check(self.learning_rate > 0, "learning_rate", "> 0", self.learning_rate)
        check(0.0 <= self.momentum < 1.0, "momentum", "in [0, 1)", self.momentum)
        check(0 <= self.n_sample <= 1_000_000, "n_sample", "in 0..1000000", self.n_sample)
        check(0.0 <= self.sample_alpha <= 1.0, "sample_alpha", "in [0, 1]", self.sample_alpha)
        check(self.bpreg >= 0, "bpreg", ">= 0", self.bpreg)
        check(self.logq >= 0, "logq", ">= 0", self.logq)
        check(self.embedding >= 0, "embedding", ">= 0", self.embedding)
        check(not (self.constrained_embedding and self.embedding > 0), "embedding",
              "0 with constrained_embedding=True (set constrained_embedding=False for a separate embedding)",
              self.embedding)
        check(self.n_epochs >= 1, "n_epochs", ">= 1", self.n_epochs)
        check(self.sample_store_size >= max(self.n_sample, 1), "sample_store_size", ">= n_sample",
              self.sample_store_size)
        check(0.0 <= self.id_dropout <= 1.0, "id_dropout", "in [0, 1]", self.id_dropout)
        check(self.feature_min_count >= 1, "feature_min_count", ">= 1", self.feature_min_count)
        check(1 <= self.title_buckets <= 1 << 20, "title_buckets", "in 1..1048576", self.title_buckets)
        check(self.id_dropout_scaling in ID_DROPOUT_SCALINGS, "id_dropout_scaling",
              f"one of {', '.join(ID_DROPOUT_SCALINGS)}", self.id_dropout_scaling)
        check(not self.item_features or self.embedding_mode == "shared", "item_features",
              "False unless the embedding is shared (constrained_embedding=True, embedding=0)", self.item_features)

    @property
    def served_training(self) -> bool:
        """Whether the option of training for the served setting (mask_seen; CPU training only) is on."""
        return self.mask_seen

    @property
    def embedding_mode(self) -> str:
        """"shared" (input rows are Wy's), "separate" (own matrix E) or "onehot" (rows of layer 0's Wx)."""
        if self.constrained_embedding:
            return "shared"
        return "separate" if self.embedding > 0 else "onehot"

    def id_scale(self, where: str) -> float:
        """The multiplier of a (kept) ID row ``where`` ("train" or "serve") under id_dropout_scaling; 1.0: as
        before (also without item features, and with id_dropout 1: no ID part at all)."""
        if not self.item_features or self.id_dropout_scaling != where or self.id_dropout >= 1.0:
            return 1.0
        return 1.0 / (1.0 - self.id_dropout) if where == "train" else 1.0 - self.id_dropout

    @property
    def elu_alpha(self) -> float:
        """The final activation's elu parameter; 0.0 means linear (no final activation)."""
        act = self.final_act or ("elu-1" if self.loss == "bpr-max" else "linear")
        return _elu_alpha(act) or 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the effective final activation and embedding mode spelt out."""
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if not f.name.startswith("_") and (self.item_features or f.name not in FEATURE_FIELDS)}
        out["layers"] = list(self.layers)
        out["final_act"] = self.final_act or ("elu-1" if self.loss == "bpr-max" else "linear")
        if not self.served_training:          # off: the record reads as it did before the options existed
            del out["mask_seen"]
        if self.id_dropout_scaling == "off":
            out.pop("id_dropout_scaling", None)
        return out

    def replace(self, **changes: Any) -> "Hyperparameters":
        if "embedding" in changes and "constrained_embedding" not in changes \
                and "constrained_embedding" not in self._explicit and int(changes["embedding"]) > 0:
            changes["constrained_embedding"] = False      # asking for an embedding size means separate mode
        return dataclasses.replace(self, _explicit=self._explicit | set(changes), **changes)


def _elu_alpha(act: str) -> float | None:
    if not act.startswith("elu-"):
        return None
    try:
        alpha = float(act[4:])
    except ValueError:
        return None
    return alpha if alpha > 0 else None


class _Checker:
    def __call__(self, ok: bool, name: str, must: str, value: Any) -> None:
        if not ok:
            raise ParamsError(f"{name} must be {must}, got {value!r}")


def _preset(**kw: Any) -> Hyperparameters:
    base = dict(n_sample=2048, n_epochs=10, constrained_embedding=True)
    return Hyperparameters(**{**base, **kw})


# Spec §7: best published settings (shared embedding, n_sample 2048, 10 epochs).
PRESETS: dict[str, Hyperparameters] = {
    "rsc15": _preset(loss="cross-entropy", final_act="linear", layers=(100,), batch_size=32,
                     dropout_p_embed=0.1, dropout_p_hidden=0.0, learning_rate=0.1, momentum=0.0,
                     sample_alpha=0.75, bpreg=0.0, logq=1.0),
    "yoochoose": _preset(loss="cross-entropy", final_act="linear", layers=(480,), batch_size=48,
                         dropout_p_embed=0.0, dropout_p_hidden=0.2, learning_rate=0.07, momentum=0.0,
                         sample_alpha=0.2, bpreg=0.0, logq=1.0),
    "rees46": _preset(loss="cross-entropy", final_act="linear", layers=(512,), batch_size=240,
                      dropout_p_embed=0.45, dropout_p_hidden=0.0, learning_rate=0.065, momentum=0.0,
                      sample_alpha=0.5, bpreg=0.0, logq=1.0),
    "coveo": _preset(loss="bpr-max", final_act="elu-1", layers=(512,), batch_size=144,
                     dropout_p_embed=0.35, dropout_p_hidden=0.0, learning_rate=0.05, momentum=0.4,
                     sample_alpha=0.2, bpreg=1.85, logq=0.0),
    "retailrocket": _preset(loss="bpr-max", final_act="elu-0.5", layers=(224,), batch_size=80,
                            dropout_p_embed=0.5, dropout_p_hidden=0.05, learning_rate=0.05, momentum=0.4,
                            sample_alpha=0.4, bpreg=1.95, logq=0.0),
    "diginetica": _preset(loss="bpr-max", final_act="elu-1", layers=(512,), batch_size=128,
                          dropout_p_embed=0.5, dropout_p_hidden=0.3, learning_rate=0.05, momentum=0.15,
                          sample_alpha=0.3, bpreg=0.9, logq=0.0),
}

_FIELDS = {f.name: f for f in fields(Hyperparameters) if not f.name.startswith("_")}


def parse_params(text: str, base: Hyperparameters | None = None) -> Hyperparameters:
    """``"diginetica,n_epochs=5"`` -> Hyperparameters. Unknown names and bad values raise ParamsError."""
    params = base or Hyperparameters()
    changes: dict[str, Any] = {}
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        if "=" not in token:
            if token not in PRESETS:
                raise ParamsError(f"unknown preset {token!r}; presets: {', '.join(PRESETS)}")
            params, changes = PRESETS[token], {}
            continue
        name, _, raw = (s.strip() for s in token.partition("="))
        if name not in _FIELDS:
            raise ParamsError(f"unknown parameter {name!r}; known: {', '.join(_FIELDS)}")
        changes[name] = _convert(name, raw)
    return params.replace(**changes) if changes else params


def _convert(name: str, raw: str) -> Any:
    typ = _FIELDS[name].type
    try:
        if typ == "bool":
            low = raw.lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return low in ("true", "1", "yes")
        if typ == "int":
            return int(float(raw)) if float(raw).is_integer() else int(raw)
        if typ == "float":
            return float(raw)
        if typ.startswith("tuple"):
            return tuple(int(v) for v in raw.replace(";", "/").split("/") if v.strip())
        return raw
    except ValueError:
        raise ParamsError(f"{name}={raw!r}: not a valid {typ}") from None
