"""``upnext train``: train GRU4Rec on a data file or on a site's stored events and write its artifact bundle."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from backend.commands.helpers import add_first_target, print_metrics, resolve_site
from backend.gru4rec.data import read_sessions
from backend.gru4rec.device import DEVICES, resolve_device
from backend.errors import UpnextError
from backend.gru4rec.params import PRESETS, parse_params
from backend.item_features import read_feature_file
from backend.settings import Settings
from backend.store.db import engine_from_settings
from backend.store.export import export_sessions
from backend.store.items import feature_records
from backend.blend import parse_weight_arg
from backend.training import train_bundle


def register(sub: argparse._SubParsersAction) -> None:
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
    add_first_target(p)
    p.add_argument("--item-features", type=Path, metavar="FILE",
                   help="with --data and item_features=True: the items' catalogue records, JSON lines "
                        "{\"id\", \"category\", \"title\", \"price\", \"attributes\"} (with --site: the site's "
                        "catalogue)")
    p.add_argument("--blend-weight", metavar="auto|W",
                   help="the gru4rec_blend placement algorithm's weight w (GRU4Rec + w x item-to-item of the "
                        "session's last items, kept in the bundle): a number >= 0 (with the last 3 items), or "
                        "auto to choose w and how many last items on the newest 10%% of the sessions (trains "
                        "GRU4Rec once more on the older 90%% for it); default: none kept, and gru4rec_blend then "
                        "serves GRU4Rec alone (w 0)")
    p.add_argument("--threads", type=int, help="BLAS threads on the CPU (default: 1 for small models, all "
                                               "cores else)")
    p.add_argument("--impl", choices=("fast", "reference"), default="fast",
                   help="training step: fused (default) or the plain torch-autograd reference")
    p.set_defaults(run=train)


def _load_site(settings: Settings, name: str, with_features: bool):
    engine = engine_from_settings(settings)
    site = resolve_site(engine, name)
    records = feature_records(engine, site["id"]) if with_features else None
    return export_sessions(engine, site["id"]), f"site:{site['name']}", records


def train(args, settings: Settings) -> int:
    params = parse_params(args.params)
    device = resolve_device(args.device, args.impl)       # refuses cuda without a usable GPU, before reading data
    if args.item_features and not params.item_features:
        raise UpnextError("--item-features needs item_features=True in --params")
    if args.item_features and args.site:
        raise UpnextError("--item-features goes with --data (with --site the site's catalogue is used)")
    records = read_feature_file(args.item_features) if args.item_features else None
    blend = parse_weight_arg(args.blend_weight)
    if args.data:
        data, source = read_sessions(args.data), str(args.data)
    else:
        data, source, records = _load_site(settings, args.site, params.item_features)
    test = read_sessions(args.test) if args.test else None
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
                           threads=args.threads, test=test, first_target=args.first_target, feature_records=records,
                           blend=blend)
    if bar is not None:
        bar.close()
    training, metrics = summary["training"], summary["metrics"]
    print(f"trained in {training['loop_seconds']:.1f} s ({training['events_per_second']:,.0f} events/s in the "
          f"training loop), final loss {summary['final_loss']:.4f}; wrote {args.out} (with itemknn/ and popular/ "
          f"fallbacks)")
    if summary["blend"]:
        print(f"blend weight {summary['blend']['weight']}, last {summary['blend']['context']} items "
              f"({summary['blend']['chosen']})")
    if metrics:
        print_metrics(metrics, f"test: {args.test}", as_json=False)
        if "blend" in metrics:
            print_metrics(metrics["blend"], f"gru4rec_blend (w={metrics['blend']['weight']}, last "
                                            f"{metrics['blend']['context']} items) on {args.test}",
                          as_json=False)
    return 0

