"""Model commands: ``train`` (GRU4Rec), ``evaluate`` (any model artifact), ``baseline`` (fit and evaluate one)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from backend.settings import Settings



def register(sub: argparse._SubParsersAction) -> None:
    from backend.gru4rec.device import DEVICES
    from backend.gru4rec.params import PRESETS

    p = sub.add_parser("train", help="train a GRU4Rec model and write its artifact",
                       description="Train GRU4Rec on a data file or on a site's stored events. PARAMS is a "
                                   f"preset ({', '.join(PRESETS)}), a parameter string like "
                                   "'loss=bpr-max,layers=512,batch_size=128,...', or both: 'diginetica,n_epochs=5'.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="training sessions: GRU4Rec TSV (SessionId, ItemId, Time) or "
                                               "one session per line")
    src.add_argument("--site", help="train on this site's events from the store")
    p.add_argument("--params", required=True, metavar="PRESET|STRING")
    p.add_argument("--out", type=Path, required=True, help="artifact directory to write (replaced if present)")
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="where to train: cuda (a GPU: torch + numba-cuda), cpu, or auto (default: the GPU when "
                        "there is one)")
    p.add_argument("--test", type=Path, help="evaluate on these test sessions after training (metrics go into "
                                             "the artifact's manifest)")
    _add_first_target(p)
    p.add_argument("--threads", type=int, help="BLAS threads on the CPU (default: 1 for small models, all "
                                               "cores else)")
    p.add_argument("--impl", choices=("fast", "reference"), default="fast",
                   help="training step: fused (default) or the plain torch-autograd reference")
    p.set_defaults(run=train)

    p = sub.add_parser("evaluate", help="evaluate a model artifact (GRU4Rec or baseline) on test sessions",
                       description="Full ranking over all training items, conservative ties, Recall and MRR "
                                   "at 1, 5, 10, 20 (the GRU4Rec evaluation protocol).")
    p.add_argument("model", type=Path, metavar="DIR")
    p.add_argument("--test", type=Path, required=True)
    _add_first_target(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=evaluate)

    p = sub.add_parser("baseline", help="fit a baseline (popular, itemknn, vsknn) and evaluate it")
    p.add_argument("name", choices=("popular", "itemknn", "vsknn"))
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--test", type=Path, required=True)
    _add_first_target(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", type=Path, help="also write the baseline's artifact here")
    p.set_defaults(run=baseline)


def _add_first_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--first-target", type=int, default=2, metavar="N",
                   help="predict each session's items from its N-th on (default 2; retailrocket-cgenet: 3)")


def _read(path: Path):
    from backend.gru4rec.data import read_sessions

    return read_sessions(path)


def _load_site(settings: Settings, name: str):
    from backend.commands.store import resolve_site
    from backend.store.db import engine_from_settings
    from backend.store.export import export_sessions

    engine = engine_from_settings(settings)
    site = resolve_site(engine, name)
    return export_sessions(engine, site["id"]), f"site:{site['name']}"


def train(args, settings: Settings) -> int:
    from tqdm import tqdm

    from backend.gru4rec.device import resolve_device
    from backend.gru4rec.params import parse_params
    from backend.training import train_bundle

    params = parse_params(args.params)
    device = resolve_device(args.device, args.impl)       # refuses cuda without a usable GPU, before reading data
    if args.data:
        data, source = _read(args.data), str(args.data)
    else:
        data, source = _load_site(settings, args.site)
    test = _read(args.test) if args.test else None
    print(f"training on {data.n_sessions} sessions, {data.n_events} events, {data.n_items} items ({source}), "
          f"device {device}", file=sys.stderr)
    bar = None

    def progress(p) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=p.pairs_total * p.n_epochs, unit="ev", unit_scale=True, file=sys.stderr,
                       dynamic_ncols=True)
        bar.set_description(f"epoch {p.epoch}/{p.n_epochs}")
        bar.set_postfix(loss=f"{p.loss:.4f}", ev_s=f"{p.events_per_second:,.0f}", refresh=False)
        bar.update((p.epoch - 1) * p.pairs_total + p.pairs_done - bar.n)

    summary = train_bundle(data, params, args.out, source=source, impl=args.impl, device=device, progress=progress,
                           threads=args.threads, test=test, first_target=args.first_target)
    if bar is not None:
        bar.close()
    training, metrics = summary["training"], summary["metrics"]
    print(f"trained in {training['loop_seconds']:.1f} s ({training['events_per_second']:,.0f} events/s in the "
          f"training loop), final loss {summary['final_loss']:.4f}; wrote {args.out} (with itemknn/ and popular/ "
          f"fallbacks)")
    if metrics:
        _print_metrics(metrics, f"test: {args.test}", as_json=False)
    return 0


def _evaluate_weights(weights, item_ids, test, first_target: int) -> dict:
    from backend.training import evaluate_bundle_parts

    return evaluate_bundle_parts(weights, item_ids, test, first_target)


def evaluate(args, settings: Settings) -> int:
    from backend.artifact import load_artifact
    from backend.gru4rec.data import align_to_items
    from backend.gru4rec.metrics import metrics_from_ranks
    from backend.gru4rec.model import FORMAT, load_model

    kind = load_artifact(args.model).kind
    test = _read(args.test)
    t0 = time.perf_counter()
    if kind == FORMAT:
        weights, art = load_model(args.model)
        metrics = _evaluate_weights(weights, art.item_ids, test, args.first_target)
    else:
        from backend.baselines import load_baseline

        model = load_baseline(args.model)
        metrics = metrics_from_ranks(model.ranks(align_to_items(test, model.item_ids), args.first_target))
    metrics["model"] = kind
    metrics["seconds"] = round(time.perf_counter() - t0, 3)
    _print_metrics(metrics, f"{kind} {args.model} on {args.test}", as_json=args.json)
    return 0


def baseline(args, settings: Settings) -> int:
    from backend.baselines import build
    from backend.gru4rec.data import align_to_items
    from backend.training import data_info
    from backend.gru4rec.metrics import metrics_from_ranks

    data, test = _read(args.data), _read(args.test)
    t0 = time.perf_counter()
    model = build(args.name, data)
    fit_seconds = time.perf_counter() - t0
    metrics = metrics_from_ranks(model.ranks(align_to_items(test, data.item_ids), args.first_target))
    metrics.update(model=model.FORMAT, fit_seconds=round(fit_seconds, 3),
                   seconds=round(time.perf_counter() - t0, 3))
    if args.out:
        model.save(args.out, data_info(data, str(args.data)), metrics=metrics)
    _print_metrics(metrics, f"{args.name} on {args.test}", as_json=args.json)
    return 0


def _print_metrics(metrics: dict, title: str, *, as_json: bool) -> None:
    from backend.gru4rec.metrics import format_table

    if as_json:
        print(json.dumps(metrics))
    else:
        print(format_table(metrics, title))
