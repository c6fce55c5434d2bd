"""One training run as the product does it: GRU4Rec on a site's sessions plus the fallbacks serving needs
(item-kNN neighbours and the popularity order), written as one bundle directory:

    OUT/                GRU4Rec artifact (format "upnext-gru4rec")
    OUT/itemknn/        item-to-item neighbours (format "upnext-itemknn")
    OUT/popular/        popularity scores (format "upnext-popular")

Used by ``upnext train``, the admin page's background runs and ``upnext demo``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from backend.baselines import ItemKNN, Popularity
from backend.blend import (DEFAULT_CONTEXT, Blend, aligned_neighbours, check_weight, choose_blend, evaluate_blend,
                           validation_split)
from backend.errors import UpnextError
from backend.gru4rec.data import align_to_items
from backend.gru4rec.evaluation import evaluate_gru4rec_both
from backend.gru4rec.trainer import train as run_training
from backend.gru4rec.weights import save_model
from backend.item_features import FeatureConfig, ItemFeatures, with_catalogue_items
from backend.session_data import SessionData


def data_info(data: SessionData, source: str) -> dict:
    info = {"source": source, "sessions": data.n_sessions, "events": data.n_events, "items": data.n_items}
    span = data.time_range()
    if span:
        info["first_time"], info["last_time"] = span
    return info


def evaluate_bundle_parts(weights, item_ids, test: SessionData, first_target: int = 2) -> dict:
    """The standard protocol's metrics, with the served setting's under "served" (ranking_metrics)."""
    return evaluate_gru4rec_both(weights, align_to_items(test, item_ids), first_target=first_target)


def train_bundle(data: SessionData, params, out: str | Path, *, source: str = "", impl: str = "fast",
                 device: str = "cpu", progress: Callable | None = None, threads: int | None = None,
                 test: SessionData | None = None, first_target: int = 2, fallbacks: bool = True,
                 max_steps: int | None = None, feature_records: list[dict] | None = None,
                 blend: str | float | None = None) -> dict:
    """Train, evaluate on ``test`` (if given), write the bundle; returns what happened (metrics, timings).
    ``device``: "cpu", "cuda" or "auto" (backend/gru4rec/device.py); the artifact is the same either way.
    ``feature_records``: catalogue records (``params.item_features``: the model's items are the data's and every
    record's, each with its features; see backend/item_features.py). ``blend``: the GRU4Rec + item-kNN blend's
    weight kept in the manifest (backend/blend.py): a number, "auto" to choose it on a validation split (the
    newest 10% of the sessions; GRU4Rec and item-kNN trained once more on the older 90% for it), or "heldout" to
    choose it on ``test`` itself (the training runs' newest held-out day, which the model and item-kNN did not
    see: no second training; the blend's figures on that day are then the chosen one's, so slightly flattering);
    None: none kept (serving the blend is then GRU4Rec alone: blend.UNCHOSEN). With ``test`` the blend's metrics go under
    metrics["blend"]."""
    t0 = time.perf_counter()
    kwargs = {"max_steps": max_steps} if max_steps is not None else {}
    events_data = data
    if params.item_features:
        features = item_features_for(params, feature_records)
        data = with_catalogue_items(data, features.item_ids)
        kwargs["features"] = features
    blend_info = chosen = None
    if blend == "auto":
        fit, valid = validation_split(data)
        fit_weights = run_training(fit, params, impl=impl, device=device, threads=threads, **kwargs).weights
        chosen, on_valid, _ = choose_blend(fit_weights.folded(), ItemKNN.fit(fit), valid, first_target)
        blend_info = {**chosen._asdict(), "chosen": "validation", "validation": on_valid}
    elif blend == "heldout":
        if test is None:
            raise UpnextError("the blend can be chosen on held-out sessions only when there are some (test)")
    elif blend is not None:
        chosen = Blend(check_weight(blend), DEFAULT_CONTEXT)
        blend_info = {**chosen._asdict(), "chosen": "given"}
    result = run_training(data, params, impl=impl, device=device, progress=progress, threads=threads, **kwargs)
    weights = result.weights.folded()
    metrics = evaluate_bundle_parts(weights, data.item_ids, test, first_target) if test else {}
    knn = ItemKNN.fit(events_data) if fallbacks or (test and blend is not None) else None
    if blend == "heldout":      # every candidate was scored on ``test``: the chosen one's metrics are at hand
        chosen, on_test, on_day = choose_blend(weights, knn, align_to_items(test, data.item_ids), first_target,
                                               item_ids=data.item_ids)
        blend_info = {**chosen._asdict(), "chosen": "held-out", "validation": on_test}
        metrics["blend"] = {**chosen._asdict(), **on_day}
    elif test and blend_info:
        nb, nw = aligned_neighbours(knn.item_ids, knn.neighbours, knn.similarities, data.item_ids)
        metrics["blend"] = {**chosen._asdict(), **evaluate_blend(
            weights, nb, nw, align_to_items(test, data.item_ids), chosen, first_target)}
    training = {"impl": impl, "device": result.device,
                "seconds": round(time.perf_counter() - t0, 3),
                "loop_seconds": round(sum(result.epoch_seconds), 3),
                "events_per_second": round(result.events_per_second, 1),
                "pairs_per_epoch": result.pairs_per_epoch, "epoch_loss": result.epoch_loss,
                **({"cuda_graph": result.cuda_graph} if result.cuda_graph else {})}
    info = data_info(events_data, source)
    out = Path(out)
    save_model(out, result.weights, params=params.as_dict(), item_ids=data.item_ids, support=data.support(),
               data=info, metrics=metrics, training=training, blend=blend_info)
    if fallbacks:
        Popularity.fit(events_data).save(out / "popular", info)
        knn.save(out / "itemknn", info)
    return {"out": str(out), "metrics": metrics, "training": training, "data": info, "blend": blend_info,
            "final_loss": result.epoch_loss[-1] if result.epoch_loss else None}


def item_features_for(params, records: list[dict] | None) -> ItemFeatures:
    """The features of ``records`` as ``params`` configure them; an error when there are none to use."""
    if not records:
        raise UpnextError("item_features=True needs item features: --item-features FILE, or a site whose "
                          "catalogue has items")
    return ItemFeatures.build(records, FeatureConfig(params.feature_min_count, params.title_buckets))
