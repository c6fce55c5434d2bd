"""Tuning GRU4Rec on a site's own data: an Optuna search (TPE, seeded) over GRU4Rec's parameter space that
maximises the served-setting Recall@20 (the page's item and the session's earlier items left out of the ranking,
a target among them a miss: what a placement with default filters can be clicked on) on a validation split
taken from the training data: its newest sessions. The test set is never read here.

    split_validation   the newest ``share`` of the sessions (training order: by start time, file order when
                       the data has no times) are the validation split; the rest is trained on
    SPACE              the parameter space (after GRU4Rec's own paropt spaces); ``fixed`` parameters stay out
    run_study          asks Optuna for trials, trains and scores them in worker processes (``jobs`` at a time,
                       each with cores // jobs BLAS and Numba threads: training holds the GIL in parts, so
                       processes, not threads), tells Optuna the scores and stores every finished trial
                       (backend/store/tuning_studies.py). A study of the same name continues where it stopped: its
                       stored trials are replayed into the sampler first, and only the missing trials run.

Used by ``upnext tune`` and by the admin's tuning runs (backend/retraining/tuning_run.py).
"""
from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numba
import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from backend.clock import now_ms
from backend.errors import UpnextError
from backend.gru4rec.data import align_to_items
from backend.gru4rec.evaluation import evaluate_gru4rec
from backend.gru4rec.params import Hyperparameters, parse_params
from backend.gru4rec.trainer import train
from backend.session_data import SessionData
from backend.store.db import Engine
from backend.store.tuning_studies import Study, Trial, open_study, record_trial, study_trials

VALID_SHARE = 0.1
DEFAULT_START = "diginetica"      # a new study's first trial: the preset a site's first model trains with
SEED = 42
OBJECTIVE = "served_recall@20"
POLL_S = 0.2

# GRU4Rec's parameter space (the ranges of its official paropt spaces; one GRU layer). ``bpreg`` and
# ``elu_param`` (final activation elu-X) only with bpr-max, ``logq`` only with cross-entropy, ``embedding`` only
# without the constrained (shared) embedding: 0 there means one-hot input.
SPACE: dict[str, Any] = {
    "loss": CategoricalDistribution(("cross-entropy", "bpr-max")),
    "constrained_embedding": CategoricalDistribution((True, False)),
    "embedding": CategoricalDistribution((0, 64, 128, 256)),
    "layers": IntDistribution(64, 512, step=32),
    "batch_size": IntDistribution(32, 256, step=16),
    "dropout_p_embed": FloatDistribution(0.0, 0.5, step=0.05),
    "dropout_p_hidden": FloatDistribution(0.0, 0.7, step=0.05),
    "learning_rate": FloatDistribution(0.01, 0.25, step=0.005),
    "momentum": FloatDistribution(0.0, 0.9, step=0.05),
    "n_sample": CategoricalDistribution((0, 512, 1024, 2048)),
    "sample_alpha": FloatDistribution(0.0, 1.0, step=0.1),
    "bpreg": FloatDistribution(0.0, 2.0, step=0.05),
    "logq": FloatDistribution(0.0, 1.0, step=0.25),
    "elu_param": FloatDistribution(0.25, 2.0, step=0.25),
    "n_epochs": IntDistribution(1, 10),
}
# tuned name -> the Hyperparameters field it sets (elu_param sets final_act)
FIELD = {name: ("final_act" if name == "elu_param" else name) for name in SPACE}
PARAM_ORDER = ("loss", "final_act", "constrained_embedding", "embedding", "layers", "batch_size", "dropout_p_embed",
               "dropout_p_hidden", "learning_rate", "momentum", "n_sample", "sample_alpha", "bpreg", "logq",
               "n_epochs")


class TuneError(UpnextError, ValueError):
    """A tuning request that cannot run; the message says why."""


# --- the validation split ---------------------------------------------------------------------------------

def split_validation(data: SessionData, share: float = VALID_SHARE) -> tuple[SessionData, SessionData]:
    """(train, validation): the validation split is the newest ``share`` of the sessions (the last ones in
    training order). Train is re-indexed to its own items; validation keeps the full vocabulary (align it to a
    model's items to score it)."""
    if not 0.0 < share < 1.0:
        raise TuneError(f"the validation share must be between 0 and 1, got {share}")
    n_valid = max(1, int(round(data.n_sessions * share)))
    if data.n_sessions - n_valid < 1:
        raise TuneError(f"{data.n_sessions} session(s): too few to split into training and validation")
    cut = data.n_sessions - n_valid
    train_part = _sessions(data, 0, cut, reindex=True)
    valid = _sessions(data, cut, data.n_sessions, reindex=False)
    if not (train_part.lengths >= 2).any():
        raise TuneError("no training session (before the validation split) has two or more events")
    if not (valid.lengths >= 2).any():
        raise TuneError("no validation session (the newest sessions) has two or more events: nothing to score")
    return train_part, valid


def _sessions(data: SessionData, lo: int, hi: int, *, reindex: bool) -> SessionData:
    """Sessions lo..hi-1; ``reindex`` keeps only the items they hold (in order of first appearance)."""
    items = data.items[data.offsets[lo]:data.offsets[hi]]
    item_ids = data.item_ids
    if reindex:
        used, first, items = np.unique(items, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty(len(used), np.int64)
        rank[order] = np.arange(len(used))
        items, item_ids = rank[items], data.item_ids[used[order]]
    return SessionData(item_ids=item_ids, items=np.asarray(items, dtype=np.int32),
                       offsets=data.offsets[lo:hi + 1] - data.offsets[lo], start_times=data.start_times[lo:hi])


# --- the parameter space ----------------------------------------------------------------------------------

def fixed_params(text: str) -> Hyperparameters:
    """The parameters held fixed (``n_epochs=3`` ...), as a parameter string; presets are refused (they would
    fix every parameter)."""
    base = parse_params(text or "")
    if any(tok.strip() and "=" not in tok for tok in (text or "").split(",")):
        raise TuneError("fixed parameters: name=value pairs only (a preset would leave nothing to tune)")
    return base


def _fixed_names(base: Hyperparameters) -> set[str]:
    return set(base._explicit)


def suggest(trial: optuna.trial.BaseTrial, base: Hyperparameters) -> dict[str, Any]:
    """Ask ``trial`` for a value of every parameter that applies and is not fixed in ``base``."""
    fixed = _fixed_names(base)
    values: dict[str, Any] = {}

    def ask(name: str) -> None:
        if FIELD[name] in fixed:
            return
        d = SPACE[name]
        if isinstance(d, CategoricalDistribution):
            values[name] = trial.suggest_categorical(name, d.choices)
        elif isinstance(d, IntDistribution):
            values[name] = trial.suggest_int(name, d.low, d.high, step=d.step)
        else:
            values[name] = trial.suggest_float(name, d.low, d.high, step=d.step)

    ask("loss")
    loss = values.get("loss", base.loss)
    ask("constrained_embedding")
    if not values.get("constrained_embedding", base.constrained_embedding):
        ask("embedding")
    for name in ("layers", "batch_size", "dropout_p_embed", "dropout_p_hidden", "learning_rate", "momentum",
                 "n_sample", "sample_alpha"):
        ask(name)
    for name in (("bpreg", "elu_param") if loss == "bpr-max" else ("logq",)):
        ask(name)
    ask("n_epochs")
    return values


def start_values(start: str, base: Hyperparameters) -> dict[str, Any]:
    """The first trial of a new study: ``start`` (a preset and/or parameter string, e.g. the site's current
    parameters) as values of the space, each snapped to the nearest point of its range, only for the names a trial
    asks (not those ``base`` fixes). A search that begins there cannot end below it on the validation split."""
    p = parse_params(start)
    d = p.as_dict()
    raw = {"loss": p.loss, "constrained_embedding": p.constrained_embedding, "embedding": p.embedding,
           "layers": p.layers[0], "n_epochs": p.n_epochs}
    for name in ("batch_size", "dropout_p_embed", "dropout_p_hidden", "learning_rate", "momentum", "n_sample",
                 "sample_alpha", "bpreg", "logq"):
        raw[name] = d[name]
    if p.final_act.startswith("elu-"):
        raw["elu_param"] = float(p.final_act[4:])
    fixed = _fixed_names(base)
    loss = base.loss if "loss" in fixed else p.loss
    constrained = base.constrained_embedding if "constrained_embedding" in fixed else p.constrained_embedding
    wanted = ["loss", "constrained_embedding", "layers", "batch_size", "dropout_p_embed", "dropout_p_hidden",
              "learning_rate", "momentum", "n_sample", "sample_alpha", "n_epochs"]
    wanted += [] if constrained else ["embedding"]
    wanted += ["bpreg", "elu_param"] if loss == "bpr-max" else ["logq"]
    out: dict[str, Any] = {}
    for name in wanted:
        if FIELD[name] in fixed or name not in raw:
            continue
        out[name] = _snap(SPACE[name], raw[name])
    return out


def _snap(dist, value):
    if isinstance(dist, CategoricalDistribution):
        if value in dist.choices:
            return value
        return min(dist.choices, key=lambda c: abs(float(c) - float(value)))
    lo, hi, step = dist.low, dist.high, dist.step or 0
    v = min(max(value, lo), hi)
    if step:
        v = lo + round((v - lo) / step) * step
        v = min(v, hi)
    return int(v) if isinstance(dist, IntDistribution) else round(float(v), 6)


def hyperparameters(base: Hyperparameters, values: dict[str, Any]) -> Hyperparameters:
    """``base`` with a trial's values; settings the trial's loss does not use are reset (no bpreg with
    cross-entropy, no logQ with bpr-max, the final activation by loss unless tuned or fixed)."""
    changes: dict[str, Any] = {}
    for name, v in values.items():
        if name == "elu_param":
            changes["final_act"] = f"elu-{float(v):g}"
        elif name == "layers":
            changes["layers"] = (int(v),)
        elif isinstance(v, float):
            changes[name] = round(v, 6)     # 0.30000000000000004 -> 0.3: the value its parameter string gives
        else:
            changes[name] = v
    loss = changes.get("loss", base.loss)
    fixed = _fixed_names(base)
    if loss == "cross-entropy" and "bpreg" not in fixed:
        changes.setdefault("bpreg", 0.0)
    if loss == "bpr-max" and "logq" not in fixed:
        changes.setdefault("logq", 0.0)
    if "final_act" not in changes and "final_act" not in fixed:
        changes["final_act"] = "linear" if loss == "cross-entropy" else base.final_act
    if changes.get("constrained_embedding", base.constrained_embedding):
        changes.setdefault("embedding", 0)
    else:
        changes.setdefault("embedding", base.embedding)
    return base.replace(**changes)


def params_string(params: Hyperparameters) -> str:
    """A parameter string (``upnext train --params``, a schedule's parameters) that gives back ``params``."""
    d = params.as_dict()
    out = []
    for name in PARAM_ORDER:
        v = d[name]
        if name == "layers":
            v = "/".join(str(h) for h in v)
        elif isinstance(v, float):
            v = f"{v:.6g}"
        out.append(f"{name}={v}")
    return ",".join(out)


# --- the trials -------------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(train_data: SessionData, valid: SessionData, base: Hyperparameters, threads: int,
                 first_target: int) -> None:
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    _WORKER.update(train=train_data, valid=align_to_items(valid, train_data.item_ids), base=base, threads=threads,
                   first_target=first_target)


def _run_trial(values: dict[str, Any]) -> dict[str, Any]:
    """Train with a trial's values and score on the validation split (in a worker, or in-process for jobs=1)."""
    t0 = time.perf_counter()
    w = _WORKER
    params = hyperparameters(w["base"], values)
    weights = train(w["train"], params, threads=w["threads"]).weights
    served = evaluate_gru4rec(weights, w["valid"], first_target=w["first_target"], served=True)
    standard = evaluate_gru4rec(weights, w["valid"], first_target=w["first_target"])
    metrics = {"served_recall@20": served["recall@20"], "served_mrr@20": served["mrr@20"],
               "recall@20": standard["recall@20"], "mrr@20": standard["mrr@20"],
               "predictions": served["predictions"]}
    return {"metrics": metrics, "seconds": round(time.perf_counter() - t0, 3)}


@dataclass
class TuneResult:
    study: Study
    trials: list[Trial]                    # every stored trial of the study, this run's included
    new_trials: int                        # finished by this call
    seconds: float
    best: Trial | None = None
    best_params: str = ""                  # the best trial as a parameter string
    stopped: str = ""                      # why it stopped before n_trials ("timeout"), else ""
    config: dict = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"study": self.study.name, "trials": len(self.trials), "new_trials": self.new_trials,
                "seconds": round(self.seconds, 3), "objective": OBJECTIVE, "stopped": self.stopped or None,
                "best": None if self.best is None else {
                    "trial": self.best.number, "value": self.best.value, "metrics": self.best.metrics,
                    "params": self.best_params, "seconds": self.best.seconds},
                "per_trial": [{"trial": t.number, "state": t.state, "value": t.value, "seconds": t.seconds,
                               "params": t.params, **({"error": t.error} if t.error else {})}
                              for t in self.trials]}


def best_trial(trials: list[Trial]) -> Trial | None:
    done = [t for t in trials if t.state == "complete" and t.value is not None]
    return max(done, key=lambda t: (t.value, -t.number)) if done else None


def default_jobs() -> int:
    return len(os.sched_getaffinity(0))


def run_study(engine: Engine, name: str, data: SessionData, n_trials: int, *, source: str = "",
              site_id: int | None = None, jobs: int | None = None, timeout: float | None = None,
              fixed: str = "", seed: int = SEED, valid_share: float = VALID_SHARE, first_target: int = 2,
              start: str | None = None,
              on_trial: Callable[[Trial, Trial | None, int, int], None] | None = None) -> TuneResult:
    """Run study ``name`` until it holds ``n_trials`` finished trials (or ``timeout`` seconds pass: no new
    trial starts after it). ``on_trial(trial, best, finished, n_trials)`` after each finished trial. ``start``
    (a preset and/or parameter string): a new study's first trial (``start_values``)."""
    if n_trials < 1:
        raise TuneError(f"trials must be at least 1, got {n_trials}")
    if jobs is not None and jobs < 1:
        raise TuneError(f"jobs must be at least 1, got {jobs}")
    if timeout is not None and timeout <= 0:
        raise TuneError(f"timeout must be positive, got {timeout}")
    base = fixed_params(fixed)
    train_data, valid = split_validation(data, valid_share)
    config = {"seed": seed, "fixed": fixed, "valid_share": valid_share, "first_target": first_target,
              "objective": OBJECTIVE}
    study, created = open_study(engine, name, site_id=site_id, source=source, config=config)
    if not created and (study.config != config or study.source != source):
        raise TuneError(f"study {name!r} was started on {study.source or '?'} with {study.config}; this run asks "
                        f"for {source or '?'} with {config}: resume it with the same data and options, or name "
                        "another study with --study")
    done = study_trials(engine, study.id)
    t0 = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # a resumed study draws on (seed + trials so far): not the first run's startup points again; constant liar:
    # trials asked while others run (jobs > 1) are steered away from those
    sampler = optuna.samplers.TPESampler(seed=seed + len(done), constant_liar=True)
    opt = optuna.create_study(direction="maximize", sampler=sampler)
    for t in done:         # replay: the sampler continues from what the stored trials taught it
        opt.add_trial(optuna.trial.create_trial(
            params=t.params, distributions={k: SPACE[k] for k in t.params},
            value=t.value if t.state == "complete" else None,
            state=optuna.trial.TrialState.COMPLETE if t.state == "complete" else optuna.trial.TrialState.FAIL))
    if start and not done:
        opt.enqueue_trial(start_values(start, base))
    remaining = n_trials - len(done)
    trials = list(done)
    result = TuneResult(study, trials, 0, 0.0, config=config)
    if remaining > 0:
        jobs = min(jobs or default_jobs(), remaining)
        threads = max(1, default_jobs() // jobs)
        runner = _Runner(opt, base, engine, study, trials, n_trials, on_trial, next_number=(
            max((t.number for t in done), default=-1) + 1))
        initargs = (train_data, valid, base, threads, first_target)
        deadline = None if timeout is None else time.monotonic() + timeout
        result.stopped = runner.run(remaining, jobs, initargs, deadline)
        result.new_trials = runner.finished
    result.seconds = time.perf_counter() - t0
    result.best = best_trial(trials)
    if result.best is not None:
        result.best_params = params_string(hyperparameters(base, result.best.params))
    return result


class _Runner:
    """Asks, runs and tells trials; stores each finished one."""

    def __init__(self, opt, base, engine, study, trials, n_trials, on_trial, *, next_number: int):
        self.opt, self.base, self.engine, self.study = opt, base, engine, study
        self.trials, self.n_trials, self.on_trial = trials, n_trials, on_trial
        self.next_number, self.finished = next_number, 0

    def _ask(self):
        trial = self.opt.ask()
        values = suggest(trial, self.base)
        number, self.next_number = self.next_number, self.next_number + 1
        return trial, number, values

    def _tell(self, trial, number: int, values: dict, outcome: dict | None, error: str | None, started: float):
        if outcome is not None:
            value = float(outcome["metrics"][OBJECTIVE])
            self.opt.tell(trial, value)
            record = Trial(number, "complete", values, value, outcome["metrics"], None, outcome["seconds"],
                           now_ms())
        else:
            self.opt.tell(trial, state=optuna.trial.TrialState.FAIL)
            record = Trial(number, "failed", values, None, {}, error, round(time.perf_counter() - started, 3),
                           now_ms())
        record_trial(self.engine, self.study.id, record)
        self.trials.append(record)
        self.finished += 1
        if self.on_trial:
            self.on_trial(record, best_trial(self.trials), len(self.trials), self.n_trials)

    def run(self, remaining: int, jobs: int, initargs: tuple, deadline: float | None) -> str:
        def out_of_time() -> bool:
            return deadline is not None and time.monotonic() >= deadline

        if jobs == 1:       # in this process: no worker to start, and Ctrl-C stops it at once
            _init_worker(*initargs)
            for _ in range(remaining):
                if out_of_time():
                    return "timeout"
                trial, number, values = self._ask()
                started = time.perf_counter()
                try:
                    outcome, error = _run_trial(values), None
                except Exception as exc:  # a trial that cannot train (a diverging loss ...) fails; the search goes on
                    outcome, error = None, f"{type(exc).__name__}: {exc}"
                self._tell(trial, number, values, outcome, error, started)
            return ""
        pool = multiprocessing.get_context("spawn").Pool(jobs, _init_worker, initargs)
        running: list = []
        asked = 0
        try:
            while True:
                while len(running) < jobs and asked < remaining and not out_of_time():
                    trial, number, values = self._ask()
                    running.append((pool.apply_async(_run_trial, (values,)), trial, number, values,
                                    time.perf_counter()))
                    asked += 1
                if not running:
                    break
                time.sleep(POLL_S)
                for item in [r for r in running if r[0].ready()]:
                    running.remove(item)
                    handle, trial, number, values, started = item
                    try:
                        outcome, error = handle.get(), None
                    except Exception as exc:  # the trial's own failure (a diverging loss ...), re-raised here
                        outcome, error = None, f"{type(exc).__name__}: {exc}"
                    self._tell(trial, number, values, outcome, error, started)
        finally:
            pool.terminate()          # an interrupted search: its unfinished trials are simply not stored
            pool.join()
        return "timeout" if asked < remaining else ""
