"""``upnext baseline``: fit a baseline (popular, itemknn, vsknn) on training sessions and evaluate it, with the
standard protocol and in the served setting (ranking_metrics)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from backend.baselines import build
from backend.commands.helpers import add_first_target, print_metrics
from backend.gru4rec.data import align_to_items, read_sessions
from backend.gru4rec.ranking_metrics import both_protocols
from backend.settings import Settings
from backend.training import data_info


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("baseline", help="fit a baseline (popular, itemknn, vsknn) and evaluate it")
    p.add_argument("name", choices=("popular", "itemknn", "vsknn"))
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--test", type=Path, required=True)
    add_first_target(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", type=Path, help="also write the baseline's artifact here")
    p.set_defaults(run=baseline)


def baseline(args, settings: Settings) -> int:
    data, test = read_sessions(args.data), read_sessions(args.test)
    t0 = time.perf_counter()
    model = build(args.name, data)
    fit_seconds = time.perf_counter() - t0
    metrics = both_protocols(*model.rank_pairs(align_to_items(test, data.item_ids), args.first_target))
    metrics.update(model=model.FORMAT, fit_seconds=round(fit_seconds, 3),
                   seconds=round(time.perf_counter() - t0, 3))
    if args.out:
        model.save(args.out, data_info(data, str(args.data)), metrics=metrics)
    print_metrics(metrics, f"{args.name} on {args.test}", as_json=args.json)
    return 0
