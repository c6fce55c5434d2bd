"""``upnext tune``: search GRU4Rec's parameters (Optuna) for the served-setting Recall@20 on the newest sessions of
the training data; the study is kept in the store and resumes; ``--site`` makes the best parameters the site's
parameters for scheduled retraining (backend/tuning.py does the work)."""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from backend.commands.helpers import add_first_target, require_migrated
from backend.gru4rec.data import read_sessions
from backend.gru4rec.params import parse_params
from backend.retraining.scheduler import set_default_params
from backend.retraining.tuning_run import site_tuning_data
from backend.settings import Settings
from backend.store.db import engine_from_settings
from backend.store.schedules import get_schedule
from backend.store.sites import site_by_name
from backend.tuning import DEFAULT_START, SEED, VALID_SHARE, TuneError, default_jobs, run_study


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="tune GRU4Rec's parameters on the served-setting metric (Optuna)",
                       description="Optuna (TPE) over GRU4Rec's parameter space, maximising the served-setting "
                                   "Recall@20 (the page's item and the session's earlier items left out) on the "
                                   "newest sessions of the training data. Trials run in parallel processes; "
                                   "the study is stored and a rerun with the same name continues it.")
    p.add_argument("--data", type=Path, help="training sessions (as `upnext train --data`); without it, the "
                                             "events of --site before their newest day")
    p.add_argument("--trials", type=int, required=True, metavar="N", help="finished trials the study should hold")
    p.add_argument("--site", help="store the best parameters as this site's parameters for scheduled retraining")
    p.add_argument("--jobs", type=int, metavar="J", help=f"trials at once (default: the cores, {default_jobs()})")
    p.add_argument("--study", help="study name (default: site-NAME with --site, else data-FILE)")
    p.add_argument("--timeout", type=float, metavar="S", help="start no new trial after S seconds")
    p.add_argument("--fix", default="", metavar="PARAMS",
                   help="parameters held fixed, e.g. n_epochs=3,layers=256 (the rest are tuned)")
    p.add_argument("--valid-share", type=float, default=VALID_SHARE,
                   help=f"share of the newest sessions used for validation (default {VALID_SHARE})")
    p.add_argument("--start", default=DEFAULT_START, metavar="PRESET|STRING",
                   help="a new study's first trial, so the search cannot end below it on the validation split "
                        "(default: diginetica, the preset a site's first model uses; with --site, the site's "
                        "retraining parameters when it has them; 'none': no start point)")
    p.add_argument("--seed", type=int, default=SEED, help=f"sampler seed (default {SEED})")
    add_first_target(p)
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(run=tune)


def _short(params: dict) -> str:
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def tune(args, settings: Settings) -> int:
    """Check the request, tune, store the best parameters for --site, print."""
    if args.trials < 1:
        raise TuneError(f"--trials must be at least 1, got {args.trials}")
    if args.data is None and not args.site:
        raise TuneError("give --data FILE, or --site NAME to tune on the site's events")
    engine = engine_from_settings(settings)
    previous = signal.signal(signal.SIGTERM, _interrupted)
    try:
        return _tune(args, engine)
    finally:
        signal.signal(signal.SIGTERM, previous)
        engine.dispose()


def _start(engine, start: str, site) -> str | None:
    if start == "none":
        return None
    schedule = get_schedule(engine, site["id"]) if site else None
    if schedule is not None and schedule.params and start == DEFAULT_START:
        return schedule.params                   # the site's own parameters, unless another start was asked
    parse_params(start)                          # a bad start: refused before any training
    return start


def _interrupted(signum, frame) -> None:
    """SIGTERM stops the search like Ctrl-C: its worker processes are ended (a plain exit would leave them
    training), the finished trials stay stored, and a rerun continues the study."""
    raise KeyboardInterrupt


def _tune(args, engine) -> int:
    require_migrated(engine)
    site = site_by_name(engine, args.site) if args.site else None     # an unknown site: before any training
    if args.data is not None:
        data, source = read_sessions(args.data), str(args.data.resolve())
    else:
        data, source = site_tuning_data(engine, site["id"]), f"site:{site['name']}"
    name = args.study or (f"site-{site['name']}" if site else f"data-{args.data.stem}")
    print(f"tuning study {name!r} on {data.n_sessions} sessions ({source}); objective: served Recall@20 on the "
          f"newest {args.valid_share:.0%} of them", file=sys.stderr)

    def on_trial(t, best, finished, n_trials) -> None:
        score = (f"served R@20 {t.value:.4f} MRR@20 {t.metrics['served_mrr@20']:.4f}" if t.state == "complete"
                 else f"FAILED ({t.error})")
        best_s = f"best {best.value:.4f} (#{best.number})" if best else "best -"
        print(f"trial {t.number} [{finished}/{n_trials}] {score} {t.seconds:.1f} s {best_s} | {_short(t.params)}",
              file=sys.stderr, flush=True)

    result = run_study(engine, name, data, args.trials, source=source, site_id=site["id"] if site else None,
                       jobs=args.jobs, timeout=args.timeout, fixed=args.fix, seed=args.seed,
                       valid_share=args.valid_share, first_target=args.first_target,
                       start=_start(engine, args.start, site), on_trial=on_trial)
    if site and result.best is not None:
        set_default_params(engine, site["id"], result.best_params)
    out = result.as_json()
    out["site"] = site["name"] if site else None
    if args.json:
        print(json.dumps(out))
        return 0 if result.best is not None else 1
    print(f"study {name!r}: {len(result.trials)} trials ({result.new_trials} new) in {result.seconds:.1f} s"
          + (f"; stopped: {result.stopped}" if result.stopped else ""))
    if result.best is None:
        print("no trial finished")
        return 1
    b = result.best
    print(f"best trial #{b.number}: served Recall@20 {b.value:.4f}, MRR@20 {b.metrics['served_mrr@20']:.4f} "
          f"(standard {b.metrics['recall@20']:.4f} / {b.metrics['mrr@20']:.4f})")
    print(f"best parameters: {result.best_params}")
    if site:
        print(f"saved as the parameters of site {site['name']!r} for scheduled retraining")
    return 0
