"""Training-free or cheap session-based baselines, evaluated with GRU4Rec's protocol (spec §6) and kept as
small array artifacts so that serving can fall back on them.

- ``popular``: the most popular items, whatever the session (format "upnext-popular")
- ``itemknn``: item-to-item similarity of the GRU4Rec paper, recommending neighbours of the last item
  (format "upnext-itemknn")
- ``vsknn``:   session-kNN with decaying weights for older items of the current session (format "upnext-vsknn")

Each one has ``fit(data) -> model``, ``model.ranks(test, first_target, served=False)``, ``model.rank_pairs(test,
first_target)`` (standard and served ranks, one pass; common.served_rank), ``model.save(path, data_info)`` and
``load(path)``; ``build``/``load_baseline`` below pick one by name or by artifact format.
"""
from __future__ import annotations

from pathlib import Path

from backend.artifact import ArtifactError, load_artifact
from backend.baselines.itemknn import ItemKNN
from backend.baselines.popularity import Popularity
from backend.baselines.vsknn import VSKNN
from backend.session_data import SessionData

BASELINES = {"popular": Popularity, "itemknn": ItemKNN, "vsknn": VSKNN}
BY_FORMAT = {cls.FORMAT: cls for cls in BASELINES.values()}


def build(name: str, data: SessionData):
    """Fit the baseline called ``name`` (see BASELINES) on training sessions."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; baselines: {', '.join(BASELINES)}")
    return BASELINES[name].fit(data)


def load_baseline(path: str | Path):
    art = load_artifact(path)
    if art.kind not in BY_FORMAT:
        raise ArtifactError(f"{path}: a {art.kind!r} artifact is not a baseline")
    return BY_FORMAT[art.kind].from_artifact(art)
