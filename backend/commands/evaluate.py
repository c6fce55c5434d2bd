"""``upnext evaluate``: score any model artifact (GRU4Rec or a baseline) on test sessions with the GRU4Rec
evaluation protocol, and in the served setting beside it (ranking_metrics)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from backend.artifact import MANIFEST, load_artifact
from backend.baselines import load_baseline
from backend.blend import MAX_CONTEXT, aligned_neighbours, blend_of, check_weight, evaluate_blend
from backend.commands.helpers import add_first_target, print_metrics
from backend.errors import UpnextError
from backend.gru4rec.data import align_to_items, read_sessions
from backend.gru4rec.ranking_metrics import both_protocols
from backend.gru4rec.weights import FORMAT, load_model
from backend.settings import Settings
from backend.training import evaluate_bundle_parts


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a model artifact (GRU4Rec or baseline) on test sessions",
                       description="Full ranking over all training items, conservative ties, Recall and MRR "
                                   "at 1, 5, 10, 20 (the GRU4Rec evaluation protocol), and beside it the "
                                   "served setting: the page's item and the session's earlier items left out, "
                                   "a target among them a miss (JSON: under \"served\").")
    p.add_argument("model", type=Path, metavar="DIR")
    p.add_argument("--test", type=Path, required=True)
    add_first_target(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--blend-weight", type=float, metavar="W",
                   help="a GRU4Rec bundle with itemknn/ also reports the gru4rec_blend placement algorithm "
                        "(JSON: under \"blend\"), as its manifest keeps it (else w 0: GRU4Rec alone), "
                        "or with this weight")
    p.add_argument("--blend-context", type=int, metavar="K",
                   help="with the blend: how many of the session's last items its item-to-item part uses (1-10)")
    p.set_defaults(run=evaluate)


def evaluate(args, settings: Settings) -> int:
    if args.blend_context is not None and not 1 <= args.blend_context <= MAX_CONTEXT:
        raise UpnextError(f"--blend-context must be between 1 and {MAX_CONTEXT}")
    kind = load_artifact(args.model).kind
    test = read_sessions(args.test)
    t0 = time.perf_counter()
    if kind == FORMAT:
        weights, art = load_model(args.model)
        metrics = evaluate_bundle_parts(weights, art.item_ids, test, args.first_target)
        if (args.model / "itemknn" / MANIFEST).exists():
            blend = blend_of(art.manifest)
            if args.blend_weight is not None:
                blend = blend._replace(weight=check_weight(args.blend_weight))
            if args.blend_context is not None:
                blend = blend._replace(context=args.blend_context)
            knn = load_baseline(args.model / "itemknn")
            nb, nw = aligned_neighbours(knn.item_ids, knn.neighbours, knn.similarities, art.item_ids)
            metrics["blend"] = {**blend._asdict(), **evaluate_blend(weights.folded(), nb, nw,
                                                                    align_to_items(test, art.item_ids), blend,
                                                                    args.first_target)}
    else:
        model = load_baseline(args.model)
        metrics = both_protocols(*model.rank_pairs(align_to_items(test, model.item_ids), args.first_target))
    metrics["model"] = kind
    metrics["seconds"] = round(time.perf_counter() - t0, 3)
    print_metrics(metrics, f"{kind} {args.model} on {args.test}", as_json=args.json)
    if "blend" in metrics and not args.json:
        print_metrics(metrics["blend"], f"\ngru4rec_blend (GRU4Rec + {blend.describe()})", as_json=False)
    return 0
