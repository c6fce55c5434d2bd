"""``upnext experiment create|list|start|pause|stop|report``: A/B tests per placement from the command line (the
admin page does the same). Running servers pick up a start, pause or stop within about two seconds."""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import replace

from backend.algorithms import NAMES
from backend.commands.helpers import resolve_site
from backend.errors import UpnextError
from backend.experiments.report import experiment_report, report_csv, series_csv, uplift_series
from backend.settings import Settings
from backend.store.db import engine_from_settings
from backend.store.experiments import Arm, change_status, create_experiment, list_experiments
from backend.store.placements import PlacementError, controls_from_json


def register(sub: argparse._SubParsersAction) -> None:
    exp = sub.add_parser("experiment", help="A/B experiments on a placement: create, start, pause, stop, report")
    exp_sub = exp.add_subparsers(dest="experiment_command", metavar="ACTION", required=True)
    p = exp_sub.add_parser("create", help="create a draft experiment (the first arm is the control)",
                           description="Example: upnext experiment create --placement product-page --name "
                                       "'GRU4Rec vs popular' --arm control=popular --arm gru=gru4rec_next "
                                       "--arm none=holdout:1")
    p.add_argument("--site", help="site name (optional when there is only one site)")
    p.add_argument("--placement", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--arm", action="append", required=True, metavar="NAME=ALGORITHM[:SHARE]",
                   help=f"repeat for each arm; ALGORITHM: {', '.join(NAMES)} "
                        "or holdout (no widget); SHARE: relative traffic weight (default 1)")
    p.add_argument("--arm-settings", action="append", default=[], metavar="NAME=JSON",
                   help="override the placement's controls for arm NAME, e.g. gru03='{\"diversity\": 0.3}' "
                        "(diversity, max_per_category, pinned, blocked, rules): compare two settings of one "
                        "algorithm")
    p.set_defaults(run=create)
    p = exp_sub.add_parser("list", help="a site's experiments, newest first")
    p.add_argument("--site")
    p.set_defaults(run=list_all)
    for action in ("start", "pause", "stop"):
        p = exp_sub.add_parser(action, help=f"{action} an experiment")
        p.add_argument("id", type=int)
        p.set_defaults(run=change, action=action)
    p = exp_sub.add_parser("report", help="per-arm KPIs per 1,000 requests with 95%% intervals and uplifts")
    p.add_argument("id", type=int)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--csv", action="store_true", help="print the report as CSV (one row per arm and metric)")
    out.add_argument("--json", action="store_true", help="print the report as JSON")
    out.add_argument("--series", metavar="METRIC", help="print the daily cumulative uplift series of METRIC as CSV")
    p.set_defaults(run=report)


def with_settings(arms: list, settings_args: list[str]) -> list:
    """The arms with the overrides ``--arm-settings NAME=JSON`` gives them."""
    by_name = {a.name: a for a in arms}
    for text in settings_args:
        name, eq, raw = text.partition("=")
        if not eq or name not in by_name:
            raise UpnextError(f"--arm-settings {text[:60]!r}: expected NAME=JSON with NAME one of the --arm names")
        try:
            overrides = controls_from_json(json.loads(raw))
        except json.JSONDecodeError:
            raise UpnextError(f"--arm-settings {name}: not JSON, e.g. '{{\"diversity\": 0.3}}'") from None
        except PlacementError as exc:
            raise UpnextError(f"--arm-settings {name}: {exc}") from None
        by_name[name] = replace(by_name[name], overrides=overrides)
    return [by_name[a.name] for a in arms]


def parse_arm(text: str):
    name, eq, rest = text.partition("=")
    algorithm, colon, share = rest.partition(":")
    if not eq or not name or not algorithm:
        raise UpnextError(f"--arm {text!r}: expected NAME=ALGORITHM[:SHARE], like gru=gru4rec_next:2")
    if colon and not share.isdigit():
        raise UpnextError(f"--arm {text!r}: the share must be a whole number")
    return Arm(name, algorithm, int(share) if colon else 1)


@contextlib.contextmanager
def _engine(settings: Settings):
    engine = engine_from_settings(settings)
    try:
        yield engine
    finally:
        engine.dispose()


def create(args, settings: Settings) -> int:
    arms = with_settings([parse_arm(a) for a in args.arm], args.arm_settings)
    with _engine(settings) as engine:
        site = resolve_site(engine, args.site)
        exp = create_experiment(engine, site["id"], args.placement, args.name, arms)
    print(json.dumps(exp.as_json()))
    return 0


def list_all(args, settings: Settings) -> int:
    with _engine(settings) as engine:
        experiments = list_experiments(engine, resolve_site(engine, args.site)["id"])
    for e in experiments:
        arms = ", ".join(f"{a.name}={a.describe()}:{a.share}" for a in e.arms)
        print(f"{e.id:>4} {e.status:<8} {e.placement:<20} {e.name:<30} {arms}")
    return 0


def change(args, settings: Settings) -> int:
    with _engine(settings) as engine:
        print(json.dumps(change_status(engine, args.id, args.action).as_json()))
    return 0


def report(args, settings: Settings) -> int:
    with _engine(settings) as engine:
        if args.series:
            try:
                print(series_csv(uplift_series(engine, args.id, args.series)), end="")
            except ValueError as exc:
                raise UpnextError(str(exc)) from None
            return 0
        result = experiment_report(engine, args.id)
    if args.csv:
        print(report_csv(result), end="")
    elif args.json:
        print(json.dumps(result))
    else:
        exp = result["experiment"]
        print(f"experiment {exp['id']} {exp['name']!r} on {exp['placement']} ({exp['status']}), "
              f"control {result['control']}")
        print_kpis(result)
    return 0


def _fmt(v, digits: int = 1) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:+,.1f}%"


def print_kpis(report: dict, out=None) -> None:
    """Every metric of an experiment report: per arm, requests, value [95% interval], uplift [95% interval]
    (* where the uplift's interval excludes 0)."""
    out = out or sys.stdout
    print(f"95% intervals: {report['method']}", file=out)
    for m in report["metrics"]:
        digits = 4 if m["per"] == 1 else 1
        print(f"\n{m['label']}", file=out)
        for arm in report["arms"]:
            k = arm["kpis"][m["name"]]
            up = "" if arm["name"] == report["control"] else (
                f"   uplift {_pct(k['uplift'])} [{_pct(k['uplift_low'])}, {_pct(k['uplift_high'])}]"
                + (" *" if k["significant"] else ""))
            print(f"  {arm['name']:<18} {arm['requests']:>9,} req  {_fmt(k['value'], digits):>10} "
                  f"[{_fmt(k['low'], digits)}, {_fmt(k['high'], digits)}]{up}", file=out)
