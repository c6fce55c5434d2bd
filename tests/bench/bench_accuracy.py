"""Accuracy table (issue 3): GRU4Rec with the closest published preset against popularity, item-kNN and
V-SKNN, Recall@20 and MRR@20, full ranking and conservative ties (spec §6). Each row prints as it finishes.

    .venv/bin/python tests/bench/bench_accuracy.py [--datasets diginetica-srgnn,...] [--models gru4rec,vsknn]
                                                   [--epochs N] [--json-out results.json]

The whole table takes long (about an hour on 2 busy cores: GRU4Rec trains 10 epochs on each dataset); pick a
subset with --datasets / --models, or fewer epochs with --epochs, for a quick look.
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
from backend.gru4rec.evaluation import evaluate_gru4rec  # noqa: E402
from backend.gru4rec.params import parse_params  # noqa: E402
from backend.gru4rec.ranking_metrics import metrics_from_ranks  # noqa: E402
from backend.gru4rec.trainer import train  # noqa: E402

SHARED = Path(os.environ.get("UPNEXT_SHARED_DATA", REPO.parent / "shared" / "data"))
FIDELITY = ("loss=cross-entropy,constrained_embedding=True,layers=100,batch_size=32,dropout_p_embed=0.1,"
            "dropout_p_hidden=0.0,learning_rate=0.1,momentum=0.0,n_sample=2048,sample_alpha=0.75,logq=1.0,"
            "n_epochs=2")
# name: (train file, test file, first target position, GRU4Rec parameters, reference figures (R@20, MRR@20))
DATASETS = {
    "rsc15-100k": ("rsc15-100k-sessionrec/yoochoose-clicks-100k_train_full.txt",
                   "rsc15-100k-sessionrec/yoochoose-clicks-100k_test.txt", 2, FIDELITY, (0.680, 0.352)),
    "diginetica-srgnn": ("diginetica-srgnn/train_sessions.txt", "diginetica-srgnn/test_sessions.txt", 2,
                         "diginetica", (0.5404, 0.1825)),
    "yoochoose1_64-srgnn": ("yoochoose1_64-srgnn/train_sessions.txt", "yoochoose1_64-srgnn/test_sessions.txt", 2,
                            "yoochoose", None),
    "retailrocket-cgenet": ("retailrocket-cgenet/train_sessions.txt", "retailrocket-cgenet/test_sessions.txt", 3,
                            "retailrocket", None),
}
MODELS = ("gru4rec", "popular", "itemknn", "vsknn")


def run(dataset: str, models: list[str], epochs: int | None) -> list[dict]:
    train_file, test_file, first_target, params_text, reference = DATASETS[dataset]
    if not (SHARED / train_file).exists():
        print(f"{dataset}: skipped, dataset not available: {SHARED / train_file}", flush=True)
        return []
    data = read_sessions(SHARED / train_file)
    test = align_to_items(read_sessions(SHARED / test_file), data.item_ids)
    rows = []
    for model in models:
        t0 = time.perf_counter()
        extra = ""
        if model == "gru4rec":
            params = parse_params(params_text)
            if epochs:
                params = params.replace(n_epochs=epochs)
            result = train(data, params)
            metrics = evaluate_gru4rec(result.weights, test, first_target=first_target)
            preset = params_text.split(",")[0]
            label = f"gru4rec ({'fidelity' if '=' in preset else preset}, {params.n_epochs} epochs)"
            extra = f", {result.events_per_second:,.0f} events/s"
            if reference and not epochs:
                r20, m20 = metrics["recall@20"] / reference[0] - 1, metrics["mrr@20"] / reference[1] - 1
                extra += f"; vs reference {reference[0]:.4f}/{reference[1]:.4f}: {r20:+.1%} / {m20:+.1%}"
        else:
            metrics = metrics_from_ranks(build(model, data).ranks(test, first_target))
            label = model
        row = {"dataset": dataset, "model": label, "seconds": round(time.perf_counter() - t0, 1), **metrics}
        rows.append(row)
        print(f"{dataset:20s} {label:32s} Recall@20 {metrics['recall@20']:.4f}  MRR@20 {metrics['mrr@20']:.4f}  "
              f"({metrics['predictions']:,} predictions, {row['seconds']:.0f} s{extra})", flush=True)
    _verdict(rows)
    return rows


def _verdict(rows: list[dict]) -> None:
    gru = next((r for r in rows if r["model"].startswith("gru4rec")), None)
    if gru is None:
        return
    for r in rows:
        if r is gru:
            continue
        r20, m20 = gru["recall@20"] / r["recall@20"] - 1, gru["mrr@20"] / r["mrr@20"] - 1
        beats = "beats" if r20 > 0 and m20 > 0 else "does NOT beat"
        print(f"    GRU4Rec {beats} {r['model']}: Recall@20 {r20:+.1%}, MRR@20 {m20:+.1%}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, from {', '.join(DATASETS)}")
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    ap.add_argument("--epochs", type=int, help="override the GRU4Rec presets' epochs (quick runs)")
    ap.add_argument("--json-out", type=Path, help="also write all rows as JSON here")
    args = ap.parse_args()
    datasets, models = args.datasets.split(","), args.models.split(",")
    bad = [d for d in datasets if d not in DATASETS] + [m for m in models if m not in MODELS]
    if bad:
        ap.error(f"unknown: {', '.join(bad)}")
    print(f"# {' '.join([Path(sys.executable).name, *sys.argv])}  (ties: conservative; full ranking)", flush=True)
    rows = [row for d in datasets for row in run(d, models, args.epochs)]
    print("\n| dataset | model | Recall@20 | MRR@20 |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['model']} | {r['recall@20']:.4f} | {r['mrr@20']:.4f} |")
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
