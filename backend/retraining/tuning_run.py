"""A tuning run: the admin's "tune, then train" as a background run (``training_runs`` row with trigger "tune",
executed by ``upnext train-run`` like a training run, with the same heartbeat, cancel and supervision).

The run's parameters are a tuning request, ``trials=N[,jobs=J][,name=value...]``: N more trials of the site's
study (``site-NAME``, or ``site-NAME-<fixed parameters>`` when some are held fixed, so a study's trials are all
comparable), J at a time (default: the cores), the name=value pairs held fixed. The search sees the site's
sessions before their newest day (the day training runs hold out and score on stays unseen by tuning too).
The best parameters become the site's parameters for scheduled retraining; the admin page offers to train with
them.
"""
from __future__ import annotations

from backend.errors import UpnextError
from backend.retraining.holdout import split_newest_day
from backend.retraining.scheduler import set_default_params
from backend.session_data import SessionData
from backend.store.db import Engine
from backend.store.export import export_sessions
from backend.store.schedules import get_schedule
from backend.store.sites import list_sites
from backend.store.tuning_studies import get_study, study_trials
from backend.tuning import DEFAULT_START, TuneError, fixed_params, run_study

MAX_TRIALS = 1000


def parse_request(text: str) -> tuple[int, int | None, str]:
    """``"trials=20,jobs=2,n_epochs=3"`` -> (20, 2, "n_epochs=3"); TuneError for a bad request."""
    trials, jobs, rest = None, None, []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        name, _, value = (s.strip() for s in token.partition("="))
        if name in ("trials", "jobs"):
            try:
                number = int(value)
            except ValueError:
                raise TuneError(f"{name}: a whole number, got {value!r}") from None
            if name == "trials":
                trials = number
            else:
                jobs = number
        else:
            rest.append(token)
    if trials is None or not 1 <= trials <= MAX_TRIALS:
        raise TuneError(f"trials: between 1 and {MAX_TRIALS}")
    if jobs is not None and jobs < 1:
        raise TuneError("jobs: at least 1")
    fixed = ",".join(rest)
    fixed_params(fixed)
    return trials, jobs, fixed


def request_string(trials: int, fixed: str = "", jobs: int | None = None) -> str:
    return ",".join([f"trials={trials}"] + ([f"jobs={jobs}"] if jobs else []) + ([fixed] if fixed else []))


def site_tuning_data(engine: Engine, site_id: int) -> SessionData:
    """The site's sessions before their newest held-out day (holdout.py)."""
    data = export_sessions(engine, site_id)
    if data.n_sessions < 3:
        raise UpnextError(f"the site has {data.n_sessions} session(s) with two or more views: not enough to tune on")
    return split_newest_day(data).train


def study_name(site_name: str, fixed: str) -> str:
    return f"site-{site_name}" + (f"-{fixed}" if fixed else "")


def _start_point(engine: Engine, site_id: int) -> str:
    """A new study begins at the site's current retraining parameters (else the first model's preset)."""
    schedule = get_schedule(engine, site_id)
    return schedule.params if schedule is not None and schedule.params else DEFAULT_START


def tune_site(engine: Engine, run, beat) -> dict:
    """Execute a tuning run (``run.params`` is its request); returns the run's result."""
    trials, jobs, fixed = parse_request(run.params)
    site = next((s for s in list_sites(engine) if s["id"] == run.site_id), None)
    if site is None:
        raise UpnextError(f"no site {run.site_id}")
    beat.set("exporting")
    data = site_tuning_data(engine, run.site_id)
    name = study_name(site["name"], fixed)
    existing = get_study(engine, name)
    before = len(study_trials(engine, existing.id)) if existing else 0
    target = before + trials

    def on_trial(t, best, finished, n_trials) -> None:
        done = finished - before
        beat.set("tuning", {"trial": done, "n_trials": trials, "fraction": round(done / trials, 4),
                            "best_value": None if best is None else round(best.value, 5),
                            "last_value": None if t.value is None else round(t.value, 5)})

    beat.set("tuning", {"trial": 0, "n_trials": trials, "fraction": 0.0})
    result = run_study(engine, name, data, target, source=f"site:{site['name']}", site_id=run.site_id, jobs=jobs,
                       fixed=fixed, start=_start_point(engine, run.site_id), on_trial=on_trial)
    if result.best is None:
        raise UpnextError("no trial finished: see the log")
    set_default_params(engine, run.site_id, result.best_params)
    return {"tuning": {"study": name, "trials": len(result.trials), "new_trials": result.new_trials,
                       "seconds": round(result.seconds, 1), "best_trial": result.best.number,
                       "best_value": result.best.value, "best_metrics": result.best.metrics,
                       "best_params": result.best_params}}
