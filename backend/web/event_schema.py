"""Validation of ``POST /v1/events`` bodies (api.md): every problem is reported with the field it is in."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from backend.item_ids import id_problem
from backend.store.tables import ID_MAX, REC_MAX, VIEW_LIKE  # noqa: F401 (re-exported)

MAX_EVENTS = 100
MAX_BODY_BYTES = 64 * 1024
MAX_IMPRESSION_ITEMS = 100
MAX_ERRORS = 20
FUTURE_SLACK_MS = 24 * 3600 * 1000          # client clocks may be off, but not by more than a day
EPOCH_2000_MS = 946_684_800_000

SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
REC_RE = re.compile(r"^r_[A-Za-z0-9_-]{1,%d}$" % (REC_MAX - 2))
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")

# type -> (required fields, optional fields); "type" and "ts" are allowed everywhere
EVENT_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "view": (frozenset({"item"}), frozenset({"rec"})),
    "rec_impression": (frozenset({"rec", "items"}), frozenset()),
    "rec_click": (frozenset({"rec", "item"}), frozenset()),
    "play": (frozenset({"item"}), frozenset({"rec"})),
    "watch": (frozenset({"item", "seconds"}), frozenset({"rec"})),
    "cart": (frozenset({"item"}), frozenset({"rec", "value", "currency"})),
    "purchase": (frozenset({"item"}), frozenset({"rec", "value", "currency"})),
}


@dataclass
class Problem:
    field: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class BatchError(Exception):
    """The batch is refused; ``status`` is 400 or 413."""

    def __init__(self, status: int, problems: list[Problem]):
        super().__init__(problems[0].message if problems else "invalid")
        self.status, self.problems = status, problems


def check_envelope(payload: Any) -> tuple[str, str, list[Any]]:
    """(key, session, raw events) of a parsed body, or BatchError."""
    if not isinstance(payload, dict):
        raise BatchError(400, [Problem("$", "body must be a JSON object with key, session and events")])
    problems = [Problem(name, "unknown field") for name in payload if name not in ("key", "session", "events")]
    key, session, events = payload.get("key"), payload.get("session"), payload.get("events")
    if not isinstance(key, str) or not key:
        problems.append(Problem("key", "required: the site's publishable key (pk_...)"))
    if not isinstance(session, str) or not SESSION_RE.match(session):
        problems.append(Problem("session", "required: 22-64 characters of A-Z a-z 0-9 _ -"))
    if not isinstance(events, list) or not events:
        problems.append(Problem("events", "required: a non-empty list of events"))
    elif len(events) > MAX_EVENTS:
        raise BatchError(413, [Problem("events", f"at most {MAX_EVENTS} events per request, got {len(events)}")])
    if problems:
        raise BatchError(400, problems)
    return key, session, events


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value \
        and abs(value) != float("inf")


def check_events(events: list[Any], now_ms: int) -> list[dict[str, Any]]:
    """Clean event dicts (type, item, rec, items, value, currency, client_ms), or BatchError(400)."""
    problems: list[Problem] = []
    clean: list[dict[str, Any]] = []
    for i, ev in enumerate(events):
        at = f"events[{i}]"
        if len(problems) >= MAX_ERRORS:
            break
        if not isinstance(ev, dict):
            problems.append(Problem(at, "must be an object"))
            continue
        etype = ev.get("type")
        spec = EVENT_FIELDS.get(etype) if isinstance(etype, str) else None
        if spec is None:
            problems.append(Problem(f"{at}.type", f"must be one of {', '.join(EVENT_FIELDS)}, got {etype!r}"[:200]))
            continue
        required, optional = spec
        for name in ev:
            if name not in required and name not in optional and name not in ("type", "ts"):
                problems.append(Problem(f"{at}.{name[:50]}", f"unknown field for a {etype} event"))
        for name in required - ev.keys():
            problems.append(Problem(f"{at}.{name}", f"required for a {etype} event"))
        row: dict[str, Any] = {"type": etype, "item": None, "rec": None, "items": None, "value": None,
                               "currency": None, "client_ms": None}
        if "item" in ev:
            if (msg := id_problem(ev["item"])):
                problems.append(Problem(f"{at}.item", msg))
            row["item"] = ev["item"]
        if "rec" in ev:
            if not isinstance(ev["rec"], str) or not REC_RE.match(ev["rec"]):
                problems.append(Problem(f"{at}.rec", f"must be a rec id (r_..., at most {REC_MAX} characters) "
                                                     "from a recommendations answer"))
            row["rec"] = ev["rec"]
        if "items" in ev:
            items = ev["items"]
            if not isinstance(items, list) or not 1 <= len(items) <= MAX_IMPRESSION_ITEMS:
                problems.append(Problem(f"{at}.items", f"must be a list of 1-{MAX_IMPRESSION_ITEMS} item ids"))
            else:
                for j, it in enumerate(items):
                    if (msg := id_problem(it)):
                        problems.append(Problem(f"{at}.items[{j}]", msg))
                        break
            row["items"] = items
        if "seconds" in ev:
            if not _number(ev["seconds"]) or not 0 <= ev["seconds"] <= 86400:
                problems.append(Problem(f"{at}.seconds", "must be a number of seconds between 0 and 86400"))
            row["value"] = ev["seconds"]
        if "value" in ev:
            if not _number(ev["value"]) or not 0 <= ev["value"] <= 1e12:
                problems.append(Problem(f"{at}.value", "must be a non-negative number"))
            row["value"] = ev["value"]
        if "currency" in ev:
            if not isinstance(ev["currency"], str) or not CURRENCY_RE.match(ev["currency"]):
                problems.append(Problem(f"{at}.currency", "must be an ISO 4217 code such as EUR"))
            row["currency"] = ev["currency"]
        if "ts" in ev:
            ts = ev["ts"]
            if not isinstance(ts, int) or isinstance(ts, bool):
                problems.append(Problem(f"{at}.ts", "must be an integer: milliseconds since 1970-01-01 UTC"))
            elif ts > now_ms + FUTURE_SLACK_MS:
                problems.append(Problem(f"{at}.ts", "is more than 24 hours in the future"))
            elif ts < EPOCH_2000_MS:
                problems.append(Problem(f"{at}.ts", "is before the year 2000: send milliseconds, not seconds"))
            row["client_ms"] = ts
        clean.append(row)
    if problems:
        raise BatchError(400, problems[:MAX_ERRORS])
    return clean
