"""Item features from catalogue records (issue 15): what a cold item is recommended by.

A record (the catalogue's own shape: ``{"id", "title", "price", "category", "attributes"}``) gives tokens:

- ``cat:<prefix>`` for every prefix of its category path, split on ``>`` or ``/`` (``cat:shoes``,
  ``cat:shoes>running``), lower-cased;
- ``attr:<key>=<value>`` for string attributes (lists: one token per string; booleans as true/false) and
  ``attr:<key>#<bucket>`` for numbers, ``bucket = floor(log2(1 + |x|))`` (negative numbers get ``-``);
- ``price:<band>``: the band of log(price) among the catalogue's price deciles (``price_edges``, per site);
- ``title:<bucket>``: each lower-cased word of the title hashed (crc32) into ``title_buckets`` buckets.

The vocabulary keeps tokens that at least ``min_count`` items produce (title buckets too), sorted. An item's
row of the CSR item x feature matrix has value ``1/sqrt(number of its known tokens)`` at each (unit length).
All of it is plain data: ``arrays()`` (numbers) and ``manifest()`` (the vocabulary, JSON), no pickles.
"""
from __future__ import annotations

import json
import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from backend.errors import UpnextError
from backend.session_data import SessionData

WORD = re.compile(r"[^\W_]+", re.UNICODE)
CATEGORY_SPLIT = re.compile(r"\s*[>/]\s*")
PRICE_BANDS = 10
ARRAY_PREFIX = "features."


class ItemFeaturesError(UpnextError, ValueError):
    """A feature file or feature arrays that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class FeatureConfig:
    min_count: int = 2
    title_buckets: int = 1024

    def __post_init__(self) -> None:
        if self.min_count < 1 or not 1 <= self.title_buckets <= 1 << 20:
            raise ItemFeaturesError("feature min_count must be >= 1 and title_buckets in 1..1048576")


def _number_bucket(x: float) -> str:
    b = int(math.floor(math.log2(1.0 + abs(x)))) if math.isfinite(x) else 99
    return f"-{b}" if x < 0 else str(b)


def _text(value: Any) -> str:
    return " ".join(str(value).lower().split())[:100]


def price_band(price: Any, edges: np.ndarray) -> int | None:
    if isinstance(price, bool) or not isinstance(price, (int, float)) or not price > 0 or not len(edges):
        return None
    return int(np.searchsorted(edges, math.log(price), side="right"))


def record_tokens(record: dict, price_edges: np.ndarray, title_buckets: int) -> list[str]:
    """Every token of one catalogue record (duplicates removed, in order of appearance)."""
    tokens: list[str] = []
    category = record.get("category")
    if isinstance(category, str) and category.strip():
        parts = [p for p in CATEGORY_SPLIT.split(category.strip().lower()) if p]
        for k in range(1, len(parts) + 1):
            tokens.append("cat:" + ">".join(parts[:k]))
    attributes = record.get("attributes") or {}
    if isinstance(attributes, dict):
        for key, value in sorted(attributes.items(), key=lambda kv: str(kv[0])):
            key = _text(key)
            for v in (value if isinstance(value, list) else [value]):
                if isinstance(v, bool):
                    tokens.append(f"attr:{key}={'true' if v else 'false'}")
                elif isinstance(v, (int, float)):
                    tokens.append(f"attr:{key}#{_number_bucket(float(v))}")
                elif isinstance(v, str) and v.strip():
                    tokens.append(f"attr:{key}={_text(v)}")
    band = price_band(record.get("price"), price_edges)
    if band is not None:
        tokens.append(f"price:{band}")
    title = record.get("title")
    if isinstance(title, str):
        for word in WORD.findall(title.lower()):
            tokens.append(f"title:{zlib.crc32(word.encode()) % title_buckets}")
    return list(dict.fromkeys(tokens))


def readable_tokens(record: dict, price_edges: np.ndarray) -> list[str]:
    """The tokens of a record as the admin page shows them: title words as ``title:<word>`` (the model sees their
    hash bucket)."""
    toks = [t for t in record_tokens(record, price_edges, 1) if not t.startswith("title:")]
    title = record.get("title")
    words = WORD.findall(title.lower()) if isinstance(title, str) else []
    return toks + [f"title:{w}" for w in dict.fromkeys(words)]


def price_deciles(records: Iterable[dict]) -> np.ndarray:
    """The 9 inner deciles of log(price) over the records with a positive price (empty: no prices)."""
    logs = [math.log(r["price"]) for r in records
            if isinstance(r.get("price"), (int, float)) and not isinstance(r.get("price"), bool) and r["price"] > 0]
    if not logs:
        return np.zeros(0, np.float64)
    return np.quantile(np.asarray(logs), np.arange(1, PRICE_BANDS) / PRICE_BANDS).astype(np.float64)


@dataclass(frozen=True)
class ItemFeatures:
    """The feature vocabulary and the CSR matrix of ``item_ids`` (row k = item_ids[k])."""
    item_ids: list[str]
    vocabulary: list[str]
    indptr: np.ndarray       # (n_items + 1,) int64
    indices: np.ndarray      # (nnz,) int32 feature index
    values: np.ndarray       # (nnz,) float32
    price_edges: np.ndarray  # (<= 9,) float64
    config: FeatureConfig

    @property
    def n_features(self) -> int:
        return len(self.vocabulary)

    @classmethod
    def build(cls, records: list[dict], config: FeatureConfig = FeatureConfig()) -> "ItemFeatures":
        """Vocabulary and matrix of ``records`` (one per item; the last record of an id wins)."""
        by_id = {str(r["id"]): r for r in records}
        edges = price_deciles(by_id.values())
        tokens = {i: record_tokens(r, edges, config.title_buckets) for i, r in by_id.items()}
        counts: dict[str, int] = {}
        for toks in tokens.values():
            for t in toks:
                counts[t] = counts.get(t, 0) + 1
        vocabulary = sorted(t for t, c in counts.items() if c >= config.min_count)
        empty = cls(list(by_id), vocabulary, np.zeros(1, np.int64), np.zeros(0, np.int32),
                    np.zeros(0, np.float32), edges, config)
        return empty.with_rows(list(by_id), [tokens[i] for i in by_id])

    def with_rows(self, item_ids: list[str], token_lists: list[list[str]]) -> "ItemFeatures":
        """The same vocabulary with the matrix of these items' tokens."""
        index = {t: k for k, t in enumerate(self.vocabulary)}
        indptr = np.zeros(len(item_ids) + 1, np.int64)
        indices: list[int] = []
        values: list[float] = []
        for k, toks in enumerate(token_lists):
            known = sorted({index[t] for t in toks if t in index})
            indices.extend(known)
            values.extend([1.0 / math.sqrt(max(len(known), 1))] * len(known))
            indptr[k + 1] = len(indices)
        return ItemFeatures(list(item_ids), self.vocabulary, indptr, np.asarray(indices, np.int32),
                            np.asarray(values, np.float32), self.price_edges, self.config)

    def tokens(self, record: dict) -> list[str]:
        """The tokens of a record with this vocabulary's price edges, and which of them are features."""
        return record_tokens(record, self.price_edges, self.config.title_buckets)

    def known_tokens(self, record: dict) -> list[str]:
        vocab = set(self.vocabulary)
        return [t for t in self.tokens(record) if t in vocab]

    def encode(self, records: list[dict]) -> "ItemFeatures":
        """Rows for new records (serving: items that arrived after training), with this vocabulary."""
        return self.with_rows([str(r["id"]) for r in records], [self.tokens(r) for r in records])

    def aligned(self, item_ids: Iterable[str]) -> "ItemFeatures":
        """Rows in the order of ``item_ids``; an id without a record gets an empty row."""
        item_ids = [str(i) for i in item_ids]
        where = {i: k for k, i in enumerate(self.item_ids)}
        indptr = np.zeros(len(item_ids) + 1, np.int64)
        parts_i, parts_v = [], []
        for k, i in enumerate(item_ids):
            r = where.get(i)
            lo, hi = (self.indptr[r], self.indptr[r + 1]) if r is not None else (0, 0)
            parts_i.append(self.indices[lo:hi])
            parts_v.append(self.values[lo:hi])
            indptr[k + 1] = indptr[k] + (hi - lo)
        cat = (lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt))
        return ItemFeatures(item_ids, self.vocabulary, indptr, cat(parts_i, np.int32), cat(parts_v, np.float32),
                            self.price_edges, self.config)

    def dense(self) -> np.ndarray:
        """(n_items, n_features) float32 (tests and small data)."""
        out = np.zeros((len(self.item_ids), self.n_features), np.float32)
        for k in range(len(self.item_ids)):
            lo, hi = self.indptr[k], self.indptr[k + 1]
            out[k, self.indices[lo:hi]] = self.values[lo:hi]
        return out

    # --- the artifact: plain arrays and a JSON part ---
    def arrays(self) -> dict[str, np.ndarray]:
        return {ARRAY_PREFIX + "indptr": self.indptr, ARRAY_PREFIX + "indices": self.indices,
                ARRAY_PREFIX + "values": self.values, ARRAY_PREFIX + "price_edges": self.price_edges}

    def manifest(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary, "min_count": self.config.min_count,
                "title_buckets": self.config.title_buckets}

    @classmethod
    def from_artifact(cls, manifest: dict[str, Any], arrays: dict[str, np.ndarray],
                      item_ids: list[str]) -> "ItemFeatures":
        try:
            part = manifest["item_features"]
            out = cls(list(item_ids), list(part["vocabulary"]), np.asarray(arrays[ARRAY_PREFIX + "indptr"]),
                      np.asarray(arrays[ARRAY_PREFIX + "indices"]), np.asarray(arrays[ARRAY_PREFIX + "values"]),
                      np.asarray(arrays[ARRAY_PREFIX + "price_edges"]),
                      FeatureConfig(int(part["min_count"]), int(part["title_buckets"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise ItemFeaturesError(f"artifact item features incomplete: {exc}") from None
        out.check()
        return out

    def check(self) -> None:
        n = len(self.item_ids)
        if (self.indptr.shape != (n + 1,) or self.indptr[0] != 0 or np.any(np.diff(self.indptr) < 0)
                or self.indptr[-1] != len(self.indices) or len(self.values) != len(self.indices)
                or (len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= self.n_features))):
            raise ItemFeaturesError("item feature arrays are not a CSR matrix of the items and vocabulary")


def read_feature_file(path: str | Path) -> list[dict]:
    """JSON lines in the catalogue record shape; a line that is not an object with an ``id`` is refused with its
    line number."""
    records = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ItemFeaturesError(f"{path}:{n}: not JSON ({exc.msg})") from None
                if not isinstance(rec, dict) or rec.get("id") in (None, ""):
                    raise ItemFeaturesError(f"{path}:{n}: needs an object with an \"id\"")
                records.append(rec)
    except OSError as exc:
        raise ItemFeaturesError(f"{path}: cannot read ({exc.strerror})") from None
    return records


def with_catalogue_items(data: SessionData, item_ids: Iterable[str]) -> SessionData:
    """``data`` with the items of ``item_ids`` that it lacks appended to its items (no events, support 0: never
    sampled as negatives), so that a model with item features has a vector for every catalogue item."""
    known = set(str(i) for i in data.item_ids)
    extra = [str(i) for i in dict.fromkeys(item_ids) if str(i) not in known]
    if not extra:
        return data
    return SessionData(item_ids=np.concatenate([data.item_ids, np.array(extra, dtype=object)]), items=data.items,
                       offsets=data.offsets, start_times=data.start_times)
