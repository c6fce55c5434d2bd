"""The traffic simulator behind ``upnext simulate``: a real server on a temporary SQLite database, a site with a
catalogue of the training items, trained and published models, an experiment over the requested arms, and the
held-out sessions replayed through the HTTP API as visitors. The results are the experiment report computed
from the database by the same code the admin page uses (backend/experiments/report.py).
"""
from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from backend.algorithms import canonical, spellings
from backend.artifact import load_artifact
from backend.errors import UpnextError
from backend.experiments.assignment import RunningExperiment
from backend.experiments.report import experiment_report
from backend.gru4rec.data import read_sessions
from backend.gru4rec.params import parse_params
from backend.publishing import publish_artifact
from backend.simulation.replay import ReplayCounts, Visit, plan_visits, replay
from backend.simulation.server import ServerProcess
from backend.simulation.visitor import CURRENCY, VisitorModel, item_price
from backend.store.db import make_engine, migrate
from backend.store.experiments import Arm, change_status, create_experiment
from backend.store.items import upsert_items
from backend.store.placements import PlacementConfig, PlacementError, controls_from_json, save_placement
from backend.store.sites import create_site
from backend.training import train_bundle

PLACEMENT = "simulated"
CATALOGUE_CHUNK = 5_000
# the server's settings over the environment's: the visitors are many on one address, no rate limit applies
SERVER_ENV = {"UPNEXT_LOG_LEVEL": "WARNING", "UPNEXT_RATE_KEY_EVENTS": "1e9", "UPNEXT_RATE_SESSION_EVENTS": "1e9",
              "UPNEXT_RATE_KEY_RECOMMENDATIONS": "1e9"}


class SimulationError(UpnextError):
    """The simulation cannot run as asked; the message says why."""


@dataclass
class SimulationConfig:
    train: Path
    test: Path
    arms: list[str]
    params: str = "yoochoose"
    sessions: int | None = None          # a random sample of this many test sessions (all when None)
    n: int = 20                          # items per list
    exclude_seen: bool = True            # the placement leaves out the session's own items (its default)
    concurrency: int = 16
    seed: int = 1
    arm_settings: dict = field(default_factory=dict)   # arm name -> placement controls it overrides
    paired: bool = False                 # every session once in every arm (replay.py)
    model: Path | None = None            # a trained bundle to publish instead of training one
    blend: str | float | None = None     # the trained bundle's gru4rec_blend weight: "auto", a number, None
    #                                      (None: "auto" when an arm serves gru4rec_blend, as a training run does)
    workdir: Path | None = None          # kept after the run when given; a temporary folder otherwise
    visitor: VisitorModel = field(default_factory=VisitorModel)


def parse_arms(text: str, settings: dict[str, dict] | None = None) -> list[Arm]:
    """``popular,item-knn,gru4rec`` -> arms with equal shares, the first one the control; each arm is named as
    given and serves with the algorithm that name spells (backend/algorithms.py), or ``NAME=ALGORITHM``
    (``plain=gru4rec_next,diverse=gru4rec_next``). ``settings``: arm name -> the placement controls it
    overrides (``{"diverse": {"diversity": 0.3}}``), to compare two settings of one algorithm."""
    specs = [a.strip() for a in text.split(",") if a.strip()]
    names = [s.partition("=")[0] for s in specs]
    algorithms = [s.partition("=")[2] or s for s in specs]
    unknown = [a for a in algorithms if canonical(a) is None]
    if unknown:
        raise SimulationError(f"unknown arm {unknown[0]!r}; arms are {', '.join(spellings())}")
    if len(names) < 2 or len(set(names)) != len(names):
        raise SimulationError("--arms needs at least two different arms, e.g. popular,item-knn,gru4rec")
    settings = settings or {}
    stray = sorted(set(settings) - set(names))
    if stray:
        raise SimulationError(f"settings for {stray[0]!r}, which is not one of the arms")
    arms = []
    for name, algorithm in zip(names, algorithms):
        try:
            overrides = controls_from_json(settings.get(name))
        except PlacementError as exc:
            raise SimulationError(f"arm {name} settings: {exc}") from None
        arms.append(Arm(name, canonical(algorithm), 1, overrides))
    return arms


def held_out_sessions(path: Path, sample: int | None, seed: int) -> list[list[str]]:
    """The test sessions with at least two items (one request each step), as item id lists; a random sample of
    ``sample`` of them (in file order) when given."""
    data = read_sessions(path)
    ids = data.item_ids
    sessions = [[str(ids[i]) for i in data.session(s)] for s in range(data.n_sessions)]
    sessions = [s for s in sessions if len(s) >= 2]
    if not sessions:
        raise SimulationError(f"{path}: no session with two or more items")
    if sample is not None and sample < len(sessions):
        keep = np.sort(np.random.default_rng(seed).choice(len(sessions), size=sample, replace=False))
        sessions = [sessions[k] for k in keep]
    return sessions


def _catalogue(engine, site_id: int, item_ids) -> int:
    rows = [{"id": str(i), "title": f"Item {i}", "url": f"/p/{i}", "image": None, "price": item_price(str(i)),
             "currency": CURRENCY, "category": None, "available": True, "attributes": {}} for i in item_ids]
    for start in range(0, len(rows), CATALOGUE_CHUNK):
        with engine.begin() as conn:
            upsert_items(conn, site_id, rows[start:start + CATALOGUE_CHUNK])
    return len(rows)


def _train(cfg: SimulationConfig, out: Path, say: Callable[[str], None], blend: str | float | None) -> dict:
    params = parse_params(cfg.params)
    data = read_sessions(cfg.train)
    say(f"training GRU4Rec ({cfg.params}) on {data.n_sessions:,} sessions, {data.n_events:,} events, "
        f"{data.n_items:,} items; item-kNN and popularity come in the bundle")
    bar = tqdm(unit="ev", unit_scale=True, file=sys.stderr, leave=False)

    def progress(p) -> None:
        bar.total = p.pairs_total * p.n_epochs
        bar.set_description(f"epoch {p.epoch}/{p.n_epochs}")
        bar.update((p.epoch - 1) * p.pairs_total + p.pairs_done - bar.n)

    try:
        summary = train_bundle(data, params, out, source=str(cfg.train), progress=progress, blend=blend)
    finally:
        bar.close()
    return {"seconds": summary["training"]["seconds"], "params": params.as_dict(), "items": data.n_items,
            "blend": summary["blend"],
            "item_ids": data.item_ids}


def _scratch_dir() -> str | None:
    """A RAM-backed folder for the throwaway database when the system has one: the server commits every event
    batch durably (fsync), which on a disk would make the simulation measure the disk."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _set_up(engine, cfg: SimulationConfig, arms: list[Arm], workdir: Path, say: Callable[[str], None]):
    """Site, catalogue, trained and published bundle, placement, started experiment; (site, experiment, facts)."""
    site = create_site(engine, f"simulate-{int(time.time())}", [])
    if cfg.model is None:
        blending = any(a.algorithm == "gru4rec_blend" for a in arms)
        trained = _train(cfg, workdir / "model", say, "auto" if cfg.blend is None and blending else cfg.blend)
        bundle, item_ids = workdir / "model", trained.pop("item_ids")
    else:
        art = load_artifact(cfg.model)
        bundle, item_ids = cfg.model, art.item_ids
        trained = {"seconds": 0.0, "params": f"(the bundle {cfg.model})", "blend": art.manifest.get("blend")}
    n_items = _catalogue(engine, site.site_id, item_ids)
    publish_artifact(engine, site.site_id, bundle, model_dir=workdir / "models")  # the server's data_dir
    save_placement(engine, site.site_id, PlacementConfig(PLACEMENT, n=cfg.n, title="Simulated visitors",
                                                              exclude_seen=cfg.exclude_seen))
    exp = create_experiment(engine, site.site_id, PLACEMENT, "simulated visitors", arms, salt=f"simulate-{cfg.seed}")
    change_status(engine, exp.id, "start")
    return site, exp, {"training": trained, "catalogue_items": n_items}


def run_simulation(cfg: SimulationConfig, say: Callable[[str], None] = lambda m: None) -> dict:
    """Set up, replay, report (module docstring). Returns the experiment report with the run's facts."""
    arms = parse_arms(",".join(cfg.arms), cfg.arm_settings)
    sessions = held_out_sessions(cfg.test, cfg.sessions, cfg.seed)
    workdir = cfg.workdir or Path(tempfile.mkdtemp(prefix="upnext-simulate-", dir=_scratch_dir()))
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{workdir / 'simulate.db'}"
    timings: dict[str, float] = {}
    engine = None
    try:
        t0 = time.perf_counter()
        migrate(url)
        engine = make_engine(url)
        site, exp, facts = _set_up(engine, cfg, arms, workdir, say)
        timings["setup_s"] = round(time.perf_counter() - t0, 1)
        visits = plan_visits(sessions, cfg.seed, RunningExperiment(exp.id, exp.salt, exp.arms) if cfg.paired
                             else None)
        say(f"replaying {len(sessions):,} test sessions{' in every arm' if cfg.paired else ''} "
            f"({sum(len(v.items) - 1 for v in visits):,} requests) with {cfg.concurrency} concurrent visitors; "
            f"arms {', '.join(a.name for a in arms)}")
        t1 = time.perf_counter()
        server = ServerProcess(url, workers=None, data_dir=workdir, log_path=workdir / "server.log",
                               env=SERVER_ENV)
        with server.start(timeout=120):
            counts = _replay(server.url, site.publishable_key, visits, cfg)
        timings["replay_s"] = round(time.perf_counter() - t1, 1)
        change_status(engine, exp.id, "stop")
        t2 = time.perf_counter()
        report = experiment_report(engine, exp.id)
        timings["report_s"] = round(time.perf_counter() - t2, 2)
    finally:
        if engine is not None:
            engine.dispose()
        if cfg.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    report["simulation"] = {
        "train": str(cfg.train), "test": str(cfg.test), "sessions": len(sessions), **facts, "n": cfg.n,
        "exclude_seen": cfg.exclude_seen, "paired": cfg.paired, "concurrency": cfg.concurrency, "seed": cfg.seed,
        "visitor_model": cfg.visitor.describe(), "timings": timings,
        "client": {"requests": dict(counts.requests), "clicks": dict(counts.clicks),
                   "sessions": dict(counts.sessions), "events": counts.events}}
    return report


def _replay(url: str, key: str, visits: list[Visit], cfg: SimulationConfig) -> ReplayCounts:
    with tqdm(total=len(visits), unit="visit", file=sys.stderr, leave=False, desc="replay") as bar:
        return asyncio.run(replay(url, key, PLACEMENT, visits, n=cfg.n, model=cfg.visitor, seed=cfg.seed,
                                  concurrency=cfg.concurrency, progress=bar.update))
