"""What each session of an experiment did, per day: requests, impressions, clicks and what followed them,
attributed to the session's arm by the rules below. The result feeds the statistics (backend/experiments/stats.py).

Units and exposure. A session enters the experiment with its first served list of the experiment (a
``served_lists`` row with this ``experiment_id``; requests without a session never do). Its arm is the arm of
that list (assignment is a hash of the session id: all its lists have the same arm).

Attribution rules, all within one session:
- requests: the experiment's served lists of the session (holdout lists included: empty, but asked for).
- impressions (viewable): the distinct lists of the session with at least one ``rec_impression`` event.
- clicks: ``rec_click`` events on a list of the session, counted once per (list, item) (a retried batch
  does not count twice).
- views, plays, watch seconds, carts, purchases, revenue ("attributed"): an event of item i belongs to list r
  when it names ``rec = r``, or, without a ``rec``, when the session's latest ``rec_click`` on item i before it
  (in arrival order) was on list r ("last click wins", also against lists of other placements). A purchase's
  revenue is its ``value`` as sent (currencies are not converted). Only lists of this experiment and session count.
- session purchases and session revenue: every purchase of the session from its first exposure until the
  experiment stopped, recommended or not. This is the only fair comparison with a holdout arm (which has no
  lists, hence nothing attributed) and catches effects outside the widget.
Days are UTC days counted from the day the experiment started; an increment falls on the day it happened
(a request on its ``served_ms``, an event on its ``received_ms``).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from backend.store.db import Engine
from backend.store.experiment_events import experiment_traffic
from backend.store.experiments import ExperimentInfo

DAY_MS = 86_400_000
# per-session counters: the denominators, then the attributed KPIs, then the session-wide ones
COUNTERS = ("requests", "impressions", "clicks", "views", "plays", "watch_seconds", "carts", "purchases",
            "revenue", "session_purchases", "session_revenue")
_ATTRIBUTED = {"view": "views", "play": "plays", "watch": "watch_seconds", "cart": "carts",
               "purchase": "purchases"}


@dataclass(frozen=True)
class Increments:
    """Per-counter increments: ``session`` (k,) int64 index into ``ExperimentSessions.ids``, ``day`` (k,) int64
    day index, ``value`` (k,) float64."""
    session: np.ndarray
    day: np.ndarray
    value: np.ndarray


@dataclass(frozen=True)
class ExperimentSessions:
    """The experiment's exposed sessions: ``ids`` (S,), ``arm`` (S,) int64 index into ``arm_names``,
    ``first_day`` (S,) int64 day of exposure, and the increments of every counter in COUNTERS."""
    arm_names: tuple[str, ...]
    ids: list[str]
    arm: np.ndarray
    first_day: np.ndarray
    day0_ms: int                        # UTC midnight of the first day
    n_days: int
    increments: dict[str, Increments]

    def totals(self, counter: str, through_day: int | None = None) -> np.ndarray:
        """(S,) float64 sums of ``counter`` per session, over all days or days <= ``through_day``."""
        inc = self.increments[counter]
        keep = slice(None) if through_day is None else inc.day <= through_day
        return np.bincount(inc.session[keep], weights=inc.value[keep], minlength=len(self.ids))


class _Collector:
    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[int, int, float]]] = defaultdict(list)

    def add(self, counter: str, session: int, day: int, value: float = 1.0) -> None:
        self.rows[counter].append((session, day, value))

    def increments(self) -> dict[str, Increments]:
        out = {}
        for counter in COUNTERS:
            rows = self.rows.get(counter, [])
            arr = np.array(rows, dtype=np.float64).reshape(-1, 3)
            out[counter] = Increments(arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2].copy())
        return out


def _owner(recs: dict[str, int], rec: str | None) -> int:
    """The session index of an experiment's list, or -1 for no list / a list of another experiment."""
    return recs.get(rec, -1) if rec is not None else -1


def collect(engine: Engine, exp: ExperimentInfo) -> ExperimentSessions:
    """Read the experiment's served lists and its sessions' events (backend/store/experiment_events.py), and
    attribute them (module docstring)."""
    arm_names = tuple(a.name for a in exp.arms)
    arm_index = {name: k for k, name in enumerate(arm_names)}
    traffic = experiment_traffic(engine, exp)
    lists, events, first_ms = traffic.lists, traffic.events, traffic.first_ms
    start_ms = min(first_ms, exp.started_ms or first_ms)
    day0_ms = start_ms - start_ms % DAY_MS
    ids: list[str] = []
    position: dict[str, int] = {}
    arms: list[int] = []
    exposure_ms: list[int] = []
    recs: dict[str, int] = {}        # rec -> session index
    out = _Collector()
    last_day = 0
    for r in lists:
        s = position.get(r.session)
        if s is None:
            s = position[r.session] = len(ids)
            ids.append(r.session)
            arms.append(arm_index.get(r.arm, -1))
            exposure_ms.append(r.served_ms)
        day = (r.served_ms - day0_ms) // DAY_MS
        last_day = max(last_day, day)
        recs[r.rec] = s
        out.add("requests", s, day)
    stop_ms = exp.stopped_ms
    current, last_click, clicked, impressed = None, {}, set(), set()
    for ev in events:
        s = position[ev.session]
        if ev.session != current:
            current, last_click, clicked, impressed = ev.session, {}, set(), set()
        day = (ev.received_ms - day0_ms) // DAY_MS
        last_day = max(last_day, day)
        if ev.type == "rec_impression":
            if _owner(recs, ev.rec) == s and ev.rec not in impressed:
                impressed.add(ev.rec)
                out.add("impressions", s, day)
            continue
        if ev.type == "rec_click":
            last_click[ev.item] = ev.rec
            if _owner(recs, ev.rec) == s and (ev.rec, ev.item) not in clicked:
                clicked.add((ev.rec, ev.item))
                out.add("clicks", s, day)
            continue
        counter = _ATTRIBUTED.get(ev.type)
        if counter is None:
            continue
        source = ev.rec or last_click.get(ev.item)
        value = float(ev.value or 0.0)
        if _owner(recs, source) == s:
            out.add(counter, s, day, value if counter == "watch_seconds" else 1.0)
            if ev.type == "purchase":
                out.add("revenue", s, day, value)
        if ev.type == "purchase" and ev.received_ms >= exposure_ms[s] and (stop_ms is None
                                                                          or ev.received_ms <= stop_ms):
            out.add("session_purchases", s, day)
            out.add("session_revenue", s, day, value)
    arm = np.array(arms, dtype=np.int64)
    first_day = (np.array(exposure_ms, dtype=np.int64) - day0_ms) // DAY_MS
    n_days = int(last_day) + 1 if ids else 0
    return ExperimentSessions(arm_names, ids, arm, first_day, day0_ms, n_days, out.increments())
