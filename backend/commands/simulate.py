"""``upnext simulate``: replay held-out real sessions as visitors against a real server running an A/B experiment,
and report per-arm KPIs with 95% intervals (backend/simulation/simulator.py)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from backend.algorithms import spellings
from backend.blend import parse_weight_arg
from backend.commands.experiment import print_kpis
from backend.errors import UpnextError
from backend.settings import Settings
from backend.simulation.simulator import SimulationConfig, run_simulation

DESCRIPTION = """\
Replay held-out sessions through the HTTP API of a real `upnext serve` (on a temporary SQLite database) running
an experiment with equal shares over ARMS, and report per-arm KPIs per 1,000 recommendation requests with 95%
intervals (delta method over sessions), computed from the database by the experiment report.

Set-up: a site whose catalogue is the training items; GRU4Rec trained on --train with --params (item-kNN and
popularity come in the same bundle) and published; one placement of --n items; the experiment started.

Visitor model: each test session is replayed page by page. On every page the visitor asks the placement for
recommendations (with the session's history) and sees the list. If the session's true next item is in it, the
visitor clicks it (rec_click, then the view of that item); otherwise it views the true next item directly.
On each page the visitor also plays the item's video with probability 0.3 and watches U(0.1, 1) of its 30-300 s
length, and puts the item in the cart with probability 0.1, buying it with probability 0.5 at its price
(5-200 EUR); lengths and prices are fixed per item by a hash of its id. The path is the same whatever the arm,
so clicks per 1,000 requests is 1,000 x the hit rate of the lists on the true next item: HR@N (= Recall@N),
with the page's own item never shown and, unless --keep-seen, the session's earlier items left out too.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="replay real sessions as visitors through an A/B experiment",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=Path, required=True, help="training sessions (GRU4Rec TSV or one per line)")
    p.add_argument("--test", type=Path, required=True, help="held-out sessions to replay (same layouts)")
    p.add_argument("--arms", required=True, metavar="ARM,ARM,...",
                   help=f"comma-separated, the first is the control; from: {', '.join(spellings())}")
    p.add_argument("--arm-settings", action="append", default=[], metavar="NAME=JSON",
                   help="the placement controls arm NAME overrides, e.g. --arms plain=gru4rec_next,"
                        "diverse=gru4rec_next --arm-settings 'diverse={\"diversity\": 0.3}'")
    p.add_argument("--sessions", type=int, metavar="N", help="replay a random sample of N test sessions")
    p.add_argument("--params", default="yoochoose", metavar="PRESET|STRING",
                   help="GRU4Rec parameters, as for `upnext train` (default: yoochoose)")
    p.add_argument("--blend-weight", metavar="auto|W",
                   help="the gru4rec_blend weight of the model trained for the run (as `upnext train "
                        "--blend-weight`): a number >= 0, or auto (chosen on the newest 10%% of --train's "
                        "sessions); default: auto when an arm serves gru4rec_blend, as a training run chooses it for its "
                        "model. Not with --model")
    p.add_argument("--model", type=Path, metavar="DIR",
                   help="publish this bundle (written by `upnext train` on --train) instead of training one")
    p.add_argument("--n", type=int, default=20, help="items per recommendation list (default 20)")
    p.add_argument("--keep-seen", action="store_true",
                   help="let lists show items the session has already seen (the placement's exclude_seen off; "
                        "by default they are left out, as in a new placement)")
    p.add_argument("--paired", action="store_true",
                   help="replay every test session once in every arm (as separate visitors whose session ids "
                        "hash into each arm) instead of splitting the sessions between arms: the arms then "
                        "differ only by their lists, and each arm's interval is as narrow as the whole test "
                        "set allows")
    p.add_argument("--concurrency", type=int, default=16, help="sessions replayed at once (default 16)")
    p.add_argument("--seed", type=int, default=1, help="sample, assignment salt and visitor draws")
    p.add_argument("--workdir", type=Path, help="keep the database, model and server log here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def summary(report: dict) -> dict:
    """The --json object: per arm, sessions, requests, clicks per 1,000 requests with its 95% interval and
    the uplift over the control; every KPI as [value, low, high]; the run's facts."""
    arms = {}
    for arm in report["arms"]:
        clicks = arm["kpis"]["clicks"]
        arms[arm["name"]] = {
            "algorithm": arm["algorithm"], "sessions": arm["sessions"], "requests": arm["requests"],
            "clicks_per_1000": clicks["value"], "clicks_per_1000_ci95": [clicks["low"], clicks["high"]],
            "clicks_uplift": clicks["uplift"], "clicks_uplift_ci95": [clicks["uplift_low"], clicks["uplift_high"]],
            "kpis": {name: [k["value"], k["low"], k["high"]] for name, k in arm["kpis"].items()}}
    return {"control": report["control"], "method": report["method"], "arms": arms,
            "simulation": report["simulation"]}


def print_header(report: dict) -> None:
    sim = report["simulation"]
    print(f"{sim['sessions']:,} sessions replayed{' in every arm' if sim['paired'] else ''} from {sim['test']} "
          f"(lists of {sim['n']}); "
          f"set-up and training {sim['timings']['setup_s']} s, replay {sim['timings']['replay_s']} s")
    blend = sim.get("training", {}).get("blend")
    if blend:
        print(f"gru4rec_blend weight {blend['weight']} ({blend['chosen']})")


def run(args, settings: Settings) -> int:
    if args.sessions is not None and args.sessions < 1:
        raise UpnextError("--sessions must be at least 1")
    if not 1 <= args.n <= 50:
        raise UpnextError("--n must be between 1 and 50")
    if not 1 <= args.concurrency <= 256:
        raise UpnextError("--concurrency must be between 1 and 256")
    if args.blend_weight is not None and args.model is not None:
        raise UpnextError("--blend-weight goes with a model trained for the run; a --model bundle keeps its own")
    blend = parse_weight_arg(args.blend_weight)
    arm_settings = {}
    for text in args.arm_settings:
        name, eq, raw = text.partition("=")
        try:
            arm_settings[name] = json.loads(raw) if eq else None
        except json.JSONDecodeError:
            arm_settings[name] = None
        if not isinstance(arm_settings[name], dict):
            raise UpnextError(f"--arm-settings {text[:60]!r}: expected NAME=JSON object, e.g. "
                              "diverse='{\"diversity\": 0.3}'")
    cfg = SimulationConfig(train=args.train, test=args.test, arms=args.arms.split(","), params=args.params,
                           arm_settings=arm_settings,
                           sessions=args.sessions, n=args.n, exclude_seen=not args.keep_seen,
                           paired=args.paired, concurrency=args.concurrency, seed=args.seed, model=args.model,
                           blend=blend, workdir=args.workdir)
    report = run_simulation(cfg, say=lambda msg: print(msg, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(summary(report)))
    else:
        print_header(report)
        print_kpis(report)
    return 0
