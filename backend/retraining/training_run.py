"""The body of one background training run, executed in its own process by ``upnext train-run RUN_ID``.

    take the run (queued -> running), start the heartbeat thread
    export the site's sessions; hold out the newest day (holdout.py)
    train the GRU4Rec bundle on the days before (GRU4Rec + item-kNN + popularity), scoring it on the held-out day
    score the bundle's popularity and item-kNN on the same day, and the site's live and newest models too
    check that serving can load it; register it as a model of the site (not live)
    scheduled runs (``gate``): promote it if it passes the gate against the live model (gate.py)

Progress (phase, epoch, loss, events/s) reaches the ``training_runs`` row through the heartbeat thread, which
also watches for a cancel request and then interrupts the main thread. SIGTERM (the server that started the run
stops) ends the run as failed. Whatever happens, the row ends in succeeded, failed or cancelled, and the
partial bundle of a run that did not succeed is deleted.

A run with trigger "tune" runs a parameter search instead (tuning_run.py), under the same heartbeat and cancel.
"""
from __future__ import annotations

import _thread
import logging
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Callable

from backend.errors import UpnextError
from backend.gru4rec.device import resolve_device
from backend.gru4rec.params import parse_params
from backend.publishing import store_bundle
from backend.retraining.gate import compare_on_day
from backend.serving.model_cache import ModelCache
from backend.retraining.holdout import baseline_metrics, gru4rec_metrics, split_newest_day
from backend.retraining.tuning_run import tune_site
from backend.settings import Settings
from backend.store import runs
from backend.store.db import Engine
from backend.store.export import export_sessions
from backend.store.blobs import blob_store
from backend.store.items import feature_records
from backend.store.trained_models import ModelRecord, list_models, live_models, promote, register_model
from backend.training import train_bundle

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
NICENESS = 10          # training yields the CPU to serving on the same machine
OTHER_MODELS = 4       # besides the live one, this many of the newest models are scored on the run's day


class RunStopped(BaseException):
    """SIGTERM: the process was asked to stop (not a user's cancel)."""


class Heartbeat:
    """Writes the run's heartbeat, phase and latest progress every HEARTBEAT_S; interrupts the main thread
    when a cancel is requested (or when the run was given up by a supervisor)."""

    def __init__(self, engine: Engine, run_id: int):
        self.engine, self.run_id = engine, run_id
        self.phase, self.progress = "starting", {}
        self.cancelled = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"run-{run_id}-heartbeat", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def set(self, phase: str, progress: dict | None = None) -> None:
        self.phase = phase
        if progress is not None:
            self.progress = progress

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                wanted = runs.heartbeat(self.engine, self.run_id, phase=self.phase, progress=self.progress)
            except Exception:  # a busy database: try again next beat
                log.exception("heartbeat failed", extra={"run": self.run_id})
                continue
            if (wanted is None or wanted) and not self.cancelled.is_set():
                self.cancelled.set()
                _thread.interrupt_main()     # KeyboardInterrupt in the main thread, at its next bytecode

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def execute(engine: Engine, settings: Settings, run_id: int) -> str:
    """Run ``run_id`` to its end; returns its final status."""
    run = runs.get_run(engine, run_id)
    if run is None:
        raise UpnextError(f"no training run {run_id}")
    if not runs.mark_started(engine, run_id, os.getpid(), socket.gethostname()):
        log.info("run not started: it is no longer queued", extra={"run": run_id})
        return runs.get_run(engine, run_id).status
    try:
        os.nice(NICENESS)
    except OSError:
        pass
    signal.signal(signal.SIGTERM, _on_sigterm)
    # a cancel interrupts the main thread as SIGINT would (Heartbeat): that does nothing while SIGINT is ignored,
    # as it is, inherited, under a server started with nohup or as a background job of a script
    signal.signal(signal.SIGINT, signal.default_int_handler)
    beat = Heartbeat(engine, run_id).start()
    out = settings.model_dir / f"site{run.site_id}-run{run_id}-{time.strftime('%Y%m%d-%H%M%S')}"
    status, error, result, model_id = "failed", None, None, None
    try:
        if run.trigger == "tune":
            result = tune_site(engine, run, beat)
        else:
            result = train_and_register(engine, run, out, beat, device=settings.train_device)
        status, model_id = "succeeded", result.get("model_id")
    except KeyboardInterrupt:
        status = "cancelled" if beat.cancelled.is_set() else "failed"
        error = "cancelled" if status == "cancelled" else "interrupted (SIGINT)"
    except RunStopped:
        error = "stopped: the server that started it shut down (SIGTERM)"
    except UpnextError as exc:
        error = str(exc)
    except Exception as exc:  # the run must end as failed with a reason, never stay "running"
        log.exception("training run failed", extra={"run": run_id})
        error = f"{type(exc).__name__}: {exc}"
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        beat.stop()
    if status != "succeeded":
        shutil.rmtree(out, ignore_errors=True)
    if not runs.finish(engine, run_id, status, result=result, error=error, model_id=model_id,
                       progress=beat.progress):
        log.warning("run was already ended by a supervisor", extra={"run": run_id, "status": status})
    log.info("training run ended", extra={"run": run_id, "status": status, "error": error})
    return status


def _on_sigterm(signum, frame) -> None:
    raise RunStopped()


def train_and_register(engine: Engine, run: runs.Run, out: Path, beat: Heartbeat, device: str = "cpu") -> dict:
    params = parse_params(run.params)
    device = resolve_device(device, named="UPNEXT_TRAIN_DEVICE=")       # a GPU that is not there: say so first
    beat.set("exporting")
    data = export_sessions(engine, run.site_id)
    if data.n_sessions < 2:
        raise UpnextError(f"the site has {data.n_sessions} session(s) with two or more views: not enough to "
                          "train and evaluate on")
    split = split_newest_day(data)

    def progress(p) -> None:
        beat.set("training", {"epoch": p.epoch, "n_epochs": p.n_epochs, "pairs_done": p.pairs_done,
                              "pairs_total": p.pairs_total, "loss": round(float(p.loss), 5),
                              "events_per_second": round(float(p.events_per_second), 1),
                              "fraction": round(((p.epoch - 1) * p.pairs_total + p.pairs_done)
                                                / max(1, p.n_epochs * p.pairs_total), 4)})

    beat.set("training")
    records = feature_records(engine, run.site_id) if params.item_features else None
    summary = train_bundle(split.train, params, out, source=f"site:{run.site_id} run:{run.id}", progress=progress,
                           test=split.test, device=device, feature_records=records, blend="heldout")
    beat.set("evaluating")
    baselines = baseline_metrics(out, split.test)
    beat.set("checking")
    # what `upnext model publish` does: a read-only, hashed copy that serving checked (loads it and answers)
    stored = store_bundle(out, out.parent)
    shutil.rmtree(out, ignore_errors=True)
    beat.set("comparing")
    cache = ModelCache(out.parent, blob_store(engine))     # other models: fetched when trained on another host
    others = score_site_models(engine, run.site_id, split.test, locate=cache.local)
    metrics = {**summary["metrics"], "heldout": split.info, "baselines": baselines, "run_id": run.id}
    model_id = register_model(engine, run.site_id, stored, "gru4rec", params=params.as_dict(), metrics=metrics)
    result = {"model_id": model_id, "heldout": split.info, "data": summary["data"],
              "training": summary["training"], "metrics": {"gru4rec": summary["metrics"], **baselines},
              "other_models": others}
    if run.gate:
        beat.set("gate")
        result["gate"] = apply_gate(engine, run.site_id, model_id, stored, split.test, locate=cache.local)
    return result


def score_site_models(engine: Engine, site_id: int, test, limit: int = OTHER_MODELS,
                      locate: Callable[[ModelRecord], Path] = lambda m: Path(m.path)) -> dict[str, dict]:
    """The site's live model and its newest other models scored on this run's held-out day, by model id (str,
    JSON keys): {"recall@20", "mrr@20", "predictions", "served": {"recall@20", "mrr@20"}} or {"error"} for an
    artifact that cannot be read."""
    records = list_models(engine, site_id)
    chosen = [m for m in records if m.live] + [m for m in records if not m.live][:limit]
    out = {}
    for m in chosen:
        try:
            scores = gru4rec_metrics(locate(m), test)
            out[str(m.id)] = {**{k: scores[k] for k in ("recall@20", "mrr@20", "predictions")},
                              "served": {k: scores["served"][k] for k in ("recall@20", "mrr@20")}}
        except Exception as exc:  # a deleted or foreign artifact: say so, it does not stop the run
            out[str(m.id)] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
    return out


def apply_gate(engine: Engine, site_id: int, model_id: int, path: Path, test,
               locate: Callable[[ModelRecord], Path] = lambda m: Path(m.path)) -> dict:
    """Compare with the live model on the same held-out day; promote when it passes."""
    live = live_models(engine).get(site_id)
    live_path = None
    if live is not None:
        try:
            live_path = locate(live)
        except Exception:  # cannot be fetched: the gate says the live model cannot be read, and does not promote
            live_path = Path(live.path)
    decision = compare_on_day(path, live_path, live.id if live else None, test)
    if decision.passed:
        promote(engine, site_id, model_id)
    log.info("gate", extra={"site": site_id, "model": model_id, **decision.as_json()})
    return {**decision.as_json(), "promoted": decision.passed}
