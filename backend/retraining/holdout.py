"""The newest held-out day, and the metrics of GRU4Rec and the baselines on it.

Every training run holds out the sessions that started in the last 24 hours of the site's data (the "newest
held-out day"), trains on the sessions before, and scores the new GRU4Rec model, popularity and item-kNN (all
fitted on the same training sessions) on that day with the evaluation protocol of spec §6 (Recall@N, MRR@N,
full ranking, conservative ties) and, under "served", in the served setting (what a placement shows: the page's
item and the session's earlier items left out, a target among them a miss; ranking_metrics). When the data spans
less than a day and a bit, the newest 10% of sessions are held out instead, and the run's record says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.artifact import load_artifact
from backend.baselines import load_baseline
from backend.gru4rec.data import align_to_items
from backend.gru4rec.ranking_metrics import both_protocols
from backend.gru4rec.weights import load_model
from backend.session_data import SessionData, restrict_to_items, select_sessions  # noqa: F401 (moved)
from backend.training import evaluate_bundle_parts

DAY_S = 86_400.0
FALLBACK_SHARE = 0.1


@dataclass(frozen=True)
class HeldOut:
    train: SessionData           # items re-indexed to those the training sessions hold
    test: SessionData            # the whole vocabulary of the export (aligned to each model when evaluated)
    info: dict                   # kind, from/to (unix s), sessions, events: shown on the admin page


def split_newest_day(data: SessionData) -> HeldOut:
    """Train on the sessions before the newest day of the data, test on that day (see the module docstring)."""
    t = data.start_times
    known = ~np.isnan(t)
    test = np.zeros(data.n_sessions, dtype=bool)
    kind = "day"
    if known.any():
        last = float(np.nanmax(t))
        test = known & (t >= last - DAY_S)
    if not test.any() or test.all():
        kind = "newest_sessions"
        n_test = max(1, int(round(data.n_sessions * FALLBACK_SHARE)))
        test = np.zeros(data.n_sessions, dtype=bool)
        test[data.n_sessions - n_test:] = True     # sessions are in time order
    test_data = select_sessions(data, test, reindex=False)
    span = test_data.time_range()
    info = {"kind": kind, "sessions": int(test.sum()), "events": int(test_data.n_events),
            "from": span[0] if span else None, "to": span[1] if span else None}
    return HeldOut(select_sessions(data, ~test, reindex=True), test_data, info)


def model_item_ids(path: str | Path) -> list[str]:
    return [str(i) for i in load_artifact(path).item_ids]


def model_data_end(path: str | Path) -> float | None:
    """The newest session start (unix s) in a model's training data, from its manifest, when recorded."""
    last = (load_artifact(path).manifest.get("data") or {}).get("last_time")
    return float(last) if isinstance(last, (int, float)) else None


def gru4rec_metrics(path: str | Path, test: SessionData) -> dict:
    """Metrics of the GRU4Rec artifact at ``path`` on ``test`` (events of unknown items dropped), both
    protocols (served ones under "served")."""
    weights, art = load_model(path)
    return evaluate_bundle_parts(weights, art.item_ids, test)


def baseline_metrics(path: str | Path, test: SessionData) -> dict:
    """Metrics of the bundle's fallbacks (``popular/``, ``itemknn/``) on ``test``, by name; missing ones are
    left out."""
    out = {}
    for name in ("popular", "itemknn"):
        part = Path(path) / name
        if (part / "manifest.json").exists():
            model = load_baseline(part)
            out[name] = both_protocols(*model.rank_pairs(align_to_items(test, model.item_ids)))
    return out
