"""``upnext cold-start``: leave-one-out evaluation with a share of items held out of training (backend/cold_evaluation.py)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from backend import cold_evaluation as cold_start
from backend.gru4rec.params import parse_params
from backend.settings import Settings

MODELS = ("popular-in-category", "content-knn", "item-knn", "v-sknn", "gru4rec", "gru4rec+features", "features-only")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cold-start", help="evaluate cold start: hold items out of training, rank them by features",
                       description="Leave-one-out on user sequences (each user's last item is the target, every "
                                   "item ranked, the user's earlier items excluded) with --cold-items of the items "
                                   "(seeded) losing every training event. HR/NDCG@10,20 and MRR@20 for all, warm "
                                   "and cold targets, and the share of cold items in any top-20.")
    p.add_argument("--sequences", type=Path, required=True,
                   help="one user per line: user_id item_1 ... item_n (oldest first; the S3-Rec layout)")
    p.add_argument("--item-features", type=Path, required=True, metavar="FILE",
                   help="catalogue records as JSON lines, or an S3-Rec item2attributes JSON object")
    p.add_argument("--params", required=True, help="GRU4Rec parameters of the three GRU4Rec models")
    p.add_argument("--cold-items", type=float, default=0.1, help="share of items held out (default 0.1; 0: the "
                                                                  "standard protocol)")
    p.add_argument("--id-dropout", type=float, default=0.3, help="id_dropout of gru4rec+features (default 0.3)")
    p.add_argument("--seed", type=int, default=0, help="which items are held out")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {', '.join(MODELS)}")
    p.add_argument("--validate", action="store_true",
                   help="tune here: every user's last item is left out, the one before it is the target")
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(run=run)


def run(args, settings: Settings) -> int:
    params = parse_params(args.params)
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    unknown = set(models) - set(MODELS)
    if unknown:
        raise cold_start.UpnextError(f"unknown model(s) {', '.join(sorted(unknown))}; known: {', '.join(MODELS)}")
    sequences = cold_start.read_sequences(args.sequences)
    if args.validate:
        sequences = [s[:-1] for s in sequences if len(s) >= 3]
    results = cold_start.run(sequences, cold_start.read_item_records(args.item_features),
                             params, cold_fraction=args.cold_items, seed=args.seed, id_dropout=args.id_dropout,
                             models=models, log=lambda m: print(m, file=sys.stderr))
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"{'model':22} {'part':5} {'targets':>7} {'HR@10':>7} {'HR@20':>7} {'NDCG@10':>8} {'NDCG@20':>8} "
          f"{'MRR@20':>7}")
    for r in results:
        for part in ("all", "warm", "cold"):
            m = r[part]
            print(f"{r['model']:22} {part:5} {m['targets']:7d} {m['hr@10']:7.4f} {m['hr@20']:7.4f} "
                  f"{m['ndcg@10']:8.4f} {m['ndcg@20']:8.4f} {m['mrr@20']:7.4f}")
        print(f"{r['model']:22} cold items in any top-20: {r['cold_in_top20']:.3f}")
    return 0
