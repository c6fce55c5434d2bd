"""Served-setting table (issue 14): popularity, item-kNN, V-SKNN, GRU4Rec (its preset, and trained for the
served setting with mask_seen) and a GRU4Rec + item-kNN blend, each with the standard protocol's Recall@20 /
MRR@20 and the served setting's (the page's item and the session's earlier items left out, a target among them a
miss: served Recall@20 x 1000 = the paired simulator's clicks per 1,000 requests). Each row prints as it finishes.

    .venv/bin/python tests/bench/bench_served.py [--datasets diginetica-srgnn,yoochoose1_64-srgnn]
        [--models popular,itemknn,vsknn,preset,mask,blend] [--epochs N] [--max-steps N] [--json-out rows.json]
        [--save-dir DIR]

GRU4Rec variants: ``preset`` (the dataset's published preset) and ``mask`` (+ mask_seen=true); skipping the
training pairs whose target repeats a seen item was measured too, worse on both datasets, and dropped.
``blend``: GRU4Rec (preset) blended with item-kNN (backend/blend.py, the ``gru4rec_blend`` placement algorithm),
score = softmax(GRU4Rec scores) + w * (item-kNN similarities of the session's last items, decayed, each row over
its sum), w and how many last items chosen for the best served Recall@20 on a validation split (the newest 10% of the
training sessions; GRU4Rec and item-kNN fitted on the older 90% for it), then both refitted on all the training
sessions and scored on the test set with that w. Every variant trains with the same seed and epochs. The whole
table takes hours on 2 busy cores (10 epochs per variant); --epochs / --max-steps for a quicker comparison (the
same for every variant). Without the datasets it says so and skips them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from backend.baselines import build  # noqa: E402
from backend.gru4rec.data import align_to_items, read_sessions  # noqa: E402
from backend.blend import aligned_neighbours, choose_blend, evaluate_blend, validation_split  # noqa: E402
from backend.gru4rec.evaluation import evaluate_gru4rec_both  # noqa: E402
from backend.gru4rec.params import parse_params  # noqa: E402
from backend.gru4rec.ranking_metrics import both_protocols  # noqa: E402
from backend.gru4rec.trainer import train  # noqa: E402
from backend.training import train_bundle  # noqa: E402

SHARED = Path(os.environ.get("UPNEXT_SHARED_DATA", REPO.parent / "shared" / "data"))
DATASETS = {      # name: (train file, test file, first target, GRU4Rec preset)
    "diginetica-srgnn": ("diginetica-srgnn/train_sessions.txt", "diginetica-srgnn/test_sessions.txt", 2,
                         "diginetica"),
    "yoochoose1_64-srgnn": ("yoochoose1_64-srgnn/train_sessions.txt", "yoochoose1_64-srgnn/test_sessions.txt", 2,
                            "yoochoose"),
}
VARIANTS = {"preset": "", "mask": "mask_seen=true"}
BASELINES = ("popular", "itemknn", "vsknn")
MODELS = (*BASELINES, "preset", "mask", "blend")


def run(dataset: str, models: list[str], epochs: int | None, out: Path | None, rows: list[dict],
        save_dir: Path | None = None, max_steps: int | None = None) -> None:
    train_file, test_file, first_target, preset = DATASETS[dataset]
    if not (SHARED / train_file).exists():
        print(f"{dataset}: skipped, dataset not available: {SHARED / train_file}", flush=True)
        return
    data = read_sessions(SHARED / train_file)
    test = align_to_items(read_sessions(SHARED / test_file), data.item_ids)
    for model in models:
        t0 = time.perf_counter()
        extra = ""
        if model in BASELINES:
            metrics = both_protocols(*build(model, data).rank_pairs(test, first_target))
            label = model
        elif model == "blend":
            text = ",".join(p for p in (preset, f"n_epochs={epochs}" if epochs else "") if p)
            metrics, best, on_valid = blend(data, test, parse_params(text), first_target)
            label = f"blend gru4rec {text} + {best.describe()}"
            extra = ", chosen on validation: served R@20 by (w, last items) " + str(
                {(v["weight"], v["context"]): v["served_recall@20"] for v in on_valid})
        else:
            text = ",".join(p for p in (preset, VARIANTS[model], f"n_epochs={epochs}" if epochs else "") if p)
            params = parse_params(text)
            if max_steps:
                text += f" (first {max_steps} steps of each epoch)"
            if save_dir:              # a bundle (GRU4Rec + item-kNN + popular) `upnext simulate --model` takes
                summary = train_bundle(data, params, save_dir / f"{dataset}-{model}", source=dataset, test=test,
                                       first_target=first_target, max_steps=max_steps)
                metrics, eps = summary["metrics"], summary["training"]["events_per_second"]
            else:
                result = train(data, params, max_steps=max_steps)
                metrics = evaluate_gru4rec_both(result.weights, test, first_target=first_target)
                eps = result.events_per_second
            label = f"gru4rec {text}"
            extra = f", {eps:,.0f} events/s"
        row = {"dataset": dataset, "model": label, "seconds": round(time.perf_counter() - t0, 1), **metrics}
        rows.append(row)
        s = metrics["served"]
        print(f"{dataset:20s} {label:60s} standard R@20 {metrics['recall@20']:.4f} MRR@20 {metrics['mrr@20']:.4f}"
              f" | served R@20 {s['recall@20']:.4f} MRR@20 {s['mrr@20']:.4f}  ({metrics['predictions']:,} "
              f"predictions, {row['seconds']:.0f} s{extra})", flush=True)
        if out:
            out.write_text(json.dumps(rows, indent=1))


def blend(data, test, params, first_target):
    """(test metrics of the blend, the chosen Blend, each candidate's validation served R@20): backend/blend.py, as
    ``upnext train --blend-weight auto`` does it."""
    fit, valid = validation_split(data)
    best, on_valid, _ = choose_blend(train(fit, params).weights, build("itemknn", fit), valid, first_target)
    model, knn = train(data, params).weights, build("itemknn", data)
    nb, nw = aligned_neighbours(knn.item_ids, knn.neighbours, knn.similarities, data.item_ids)
    return evaluate_blend(model, nb, nw, test, best, first_target), best, on_valid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, from {', '.join(DATASETS)}")
    ap.add_argument("--models", default=",".join(MODELS),
                    help=f"comma-separated, from {', '.join((*BASELINES, *VARIANTS, 'blend'))}")
    ap.add_argument("--epochs", type=int, help="override the presets' epochs (the same for every variant)")
    ap.add_argument("--max-steps", type=int, help="stop each epoch after this many mini-batches (the oldest "
                                                   "sessions only; a quick comparison, the same for every variant)")
    ap.add_argument("--json-out", type=Path, help="also write all rows as JSON here (after each row)")
    ap.add_argument("--save-dir", type=Path, help="keep each GRU4Rec variant as a bundle here (DATASET-VARIANT/), "
                                                  "for `upnext simulate --paired --model DIR`")
    args = ap.parse_args()
    datasets, models = args.datasets.split(","), args.models.split(",")
    bad = [d for d in datasets if d not in DATASETS] + [m for m in models
                                                        if m not in (*BASELINES, *VARIANTS, "blend")]
    if bad:
        ap.error(f"unknown: {', '.join(bad)}")
    print(f"# {' '.join([Path(sys.executable).name, *sys.argv])}  (ties: conservative; full ranking)", flush=True)
    rows: list[dict] = []
    for d in datasets:
        run(d, models, args.epochs, args.json_out, rows, args.save_dir, args.max_steps)
    print("\n| dataset | model | standard R@20 | standard MRR@20 | served R@20 | served MRR@20 | clicks/1000 "
          "(served R@20 x 1000) |\n|---|---|---|---|---|---|---|")
    for r in rows:
        s = r["served"]
        print(f"| {r['dataset']} | {r['model']} | {r['recall@20']:.4f} | {r['mrr@20']:.4f} | {s['recall@20']:.4f} "
              f"| {s['mrr@20']:.4f} | {1000 * s['recall@20']:.1f} |")


if __name__ == "__main__":
    main()
