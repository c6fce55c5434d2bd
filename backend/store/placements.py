"""Placements: where a site shows recommendations and how they are chosen. Validated here, cached for serving."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from backend.algorithms import FALLBACKS, NAMES, canonical
from backend.clock import now_ms
from backend.errors import UpnextError
from backend.item_ids import DESCRIPTION, valid_id
from backend.store.per_site import PerSiteDirectory
from backend.store.placement_rules import MAX_RULES, Rule, RuleError, rule_from_json
from backend.store.tables import Placement

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
PAGE_KINDS = ("home", "product", "category", "cart", "video", "search", "other")
MAX_N = 50
MAX_BLOCKED = 1000
# The merchandising controls: what an experiment's arm may set differently from its placement.
CONTROLS = ("diversity", "max_per_category", "pinned", "blocked", "rules")
FIELDS = ("page_kind", "algorithm", "n", "title", "exclude_seen", "only_available", "same_category", "fallback",
          *CONTROLS)


class PlacementError(UpnextError, ValueError):
    """A placement setting is not valid; the message names it (every problem, when there are several:
    ``problems`` holds them as (field, message))."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.problems = problems or [("", message)]


@dataclass(frozen=True)
class PlacementConfig:
    name: str
    page_kind: str = "product"
    algorithm: str = "gru4rec_next"
    n: int = 8
    title: str = ""
    exclude_seen: bool = True
    only_available: bool = True
    same_category: bool = False
    fallback: tuple[str, ...] = field(default=FALLBACKS)
    diversity: float = 0.0             # 0 (relevance only) .. 1: re-ranking over item vectors (MMR)
    max_per_category: int | None = None
    pinned: tuple[tuple[str, int], ...] = ()    # (item id, position from 1)
    blocked: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    configured: bool = True            # False: a name nobody configured, served with the defaults

    @property
    def controlled(self) -> bool:
        """Whether any merchandising control is set (else the answer is today's, unchanged)."""
        return bool(self.diversity or self.max_per_category or self.pinned or self.blocked or self.rules)

    def problems(self) -> list[tuple[str, str]]:
        """Every (field, message) wrong with these settings; empty when they are valid."""
        out = []
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            out.append(("name", "1-64 lowercase letters, digits, '-' or '_' (as in data-upnext=\"...\")"))
        if self.page_kind not in PAGE_KINDS:
            out.append(("page_kind", f"must be one of {', '.join(PAGE_KINDS)}"))
        if canonical(self.algorithm) not in NAMES:
            out.append(("algorithm", f"must be one of {', '.join(NAMES)}"))
        n_ok = isinstance(self.n, int) and not isinstance(self.n, bool) and 1 <= self.n <= MAX_N
        if not n_ok:
            out.append(("n", f"item count must be a whole number between 1 and {MAX_N}"))
        if not isinstance(self.title, str) or len(self.title) > 200:
            out.append(("title", "text of at most 200 characters"))
        for name in ("exclude_seen", "only_available", "same_category"):
            if not isinstance(getattr(self, name), bool):
                out.append((name, "true or false"))
        fallback = self.fallback
        if (not isinstance(fallback, (list, tuple)) or any(f not in FALLBACKS for f in fallback)
                or len(set(fallback)) != len(fallback)):
            out.append(("fallback", f"an ordered choice among {', '.join(FALLBACKS)}"))
        d = self.diversity
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0 <= d <= 1:
            out.append(("diversity", "a number from 0 (off) to 1 (most diverse)"))
        cap = self.max_per_category
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= MAX_N):
            out.append(("max_per_category", f"empty (no cap) or a whole number between 1 and {MAX_N}"))
        out += _pinned_problems(self.pinned, self.n if n_ok else MAX_N)
        blocked = self.blocked
        if not isinstance(blocked, (list, tuple)) or len(blocked) > MAX_BLOCKED:
            out.append(("blocked", f"a list of at most {MAX_BLOCKED} item ids"))
        else:
            bad = [b for b in blocked if not valid_id(b)]
            if bad:
                out.append(("blocked", f"{str(bad[0])[:80]!r} is not an item id ({DESCRIPTION})"))
            both = sorted({p[0] for p in self.pinned if isinstance(p, tuple) and p} & set(map(str, blocked)))
            if both and not bad:
                out.append(("blocked", f"{both[0][:80]!r} is both pinned and blocked"))
        if not isinstance(self.rules, (list, tuple)) or len(self.rules) > MAX_RULES:
            out.append(("rules", f"a list of at most {MAX_RULES} rules"))
        elif not all(isinstance(r, Rule) for r in self.rules):
            out.append(("rules", "rules must be parsed rules"))
        return out

    def validated(self) -> "PlacementConfig":
        problems = self.problems()
        if problems:
            raise PlacementError("; ".join(f"{f}: {m}" if f else m for f, m in problems), problems)
        return replace(self, algorithm=canonical(self.algorithm), fallback=tuple(self.fallback),
                       diversity=float(self.diversity), blocked=tuple(dict.fromkeys(self.blocked)),
                       pinned=tuple(sorted(self.pinned, key=lambda p: p[1])), rules=tuple(self.rules))

    def as_json(self) -> dict:
        """The settings as the placements API and ``upnext placement`` show them (``configured`` aside)."""
        return {"name": self.name, "page_kind": self.page_kind, "algorithm": self.algorithm, "n": self.n,
                "title": self.title, "exclude_seen": self.exclude_seen, "only_available": self.only_available,
                "same_category": self.same_category, "fallback": list(self.fallback), "diversity": self.diversity,
                "max_per_category": self.max_per_category,
                "pinned": [{"item": i, "position": p} for i, p in self.pinned], "blocked": list(self.blocked),
                "rules": [r.as_json() for r in self.rules]}


def _pinned_problems(pinned, n: int) -> list[tuple[str, str]]:
    if not isinstance(pinned, (list, tuple)) or len(pinned) > n:
        return [("pinned", f"at most as many pinned items as the list shows ({n})")]
    ok = all(isinstance(p, tuple) and len(p) == 2 for p in pinned)
    if not ok:
        return [("pinned", "pairs of item id and position")]
    for item, pos in pinned:
        if not valid_id(item):
            return [("pinned", f"{str(item)[:80]!r} is not an item id ({DESCRIPTION})")]
        if isinstance(pos, bool) or not isinstance(pos, int) or not 1 <= pos <= n:
            return [("pinned", f"{item[:80]}: the position is a whole number between 1 and {n} (the item count)")]
    if len({p[0] for p in pinned}) != len(pinned):
        return [("pinned", "an item is pinned twice")]
    if len({p[1] for p in pinned}) != len(pinned):
        return [("pinned", "two items are pinned at the same position")]
    return []


def config_from_json(name: str, body, *, base: "PlacementConfig | None" = None,
                     allowed: tuple[str, ...] = FIELDS) -> PlacementConfig:
    """Settings from a JSON object (the placements API, ``upnext placement set``, an experiment arm's
    overrides): fields missing keep ``base``'s values (default: the defaults); every problem is listed in the
    PlacementError raised. The JSON's ``name``, when given, must be ``name``."""
    problems: list[tuple[str, str]] = []
    if not isinstance(body, dict):
        raise PlacementError("expected a JSON object of placement fields", [("", "expected a JSON object")])
    values: dict = {}
    for key, v in body.items():
        if key == "name" and "name" not in allowed:
            if v != name:
                problems.append(("name", f"the body names {str(v)[:64]!r}, the path {name!r}"))
            continue
        if key not in allowed:
            problems.append((str(key)[:60], "unknown field" + (f" (one of {', '.join(allowed)})" if allowed else "")))
            continue
        try:
            values[key] = _field_from_json(key, v)
        except PlacementError as exc:
            problems += exc.problems
    cfg = replace(base or PlacementConfig(name=name), name=name, configured=True, **values)
    problems += [p for p in cfg.problems() if p[0] not in {q[0] for q in problems}]
    if problems:
        raise PlacementError("; ".join(f"{f}: {m}" if f else m for f, m in problems), problems)
    return cfg.validated()


def _field_from_json(key: str, v):
    if key == "fallback":
        return tuple(v) if isinstance(v, list) else v
    if key == "blocked":
        return tuple(v) if isinstance(v, list) else v
    if key == "pinned":
        if not isinstance(v, list):
            raise PlacementError("pinned", [("pinned", "a list of {\"item\": ID, \"position\": 1..n}")])
        out = []
        for p in v:
            if not isinstance(p, dict) or set(p) != {"item", "position"}:
                raise PlacementError("pinned", [("pinned", "each entry is {\"item\": ID, \"position\": 1..n}")])
            out.append((p["item"], p["position"]))
        return tuple(out)
    if key == "rules":
        if not isinstance(v, list):
            raise PlacementError("rules", [("rules", "a list of rules")])
        rules, problems = [], []
        for i, r in enumerate(v):
            try:
                rules.append(rule_from_json(r))
            except RuleError as exc:
                problems.append((f"rules[{i}]", str(exc)))
        if problems:
            raise PlacementError("rules", problems)
        return tuple(rules)
    if key == "diversity" and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    return v


def default_placement(name: str) -> PlacementConfig:
    """How a placement nobody configured is served: GRU4Rec next with the default fallbacks."""
    return PlacementConfig(name=name, configured=False)


def save_placement(engine: Engine, site_id: int, cfg: PlacementConfig) -> PlacementConfig:
    cfg = cfg.validated()
    values = cfg.as_json()
    values.update(site_id=site_id, updated_ms=now_ms())
    with engine.begin() as conn:
        ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(Placement)
        conn.execute(ins.values(values).on_conflict_do_update(
            index_elements=["site_id", "name"], set_={k: v for k, v in values.items() if k not in ("site_id", "name")}))
    return cfg


def delete_placement(engine: Engine, site_id: int, name: str) -> bool:
    with engine.begin() as conn:
        return conn.execute(delete(Placement).where(Placement.site_id == site_id,
                                                    Placement.name == name)).rowcount > 0


def list_placements(engine: Engine, site_id: int) -> list[PlacementConfig]:
    with engine.connect() as conn:
        rows = conn.execute(select(Placement).where(Placement.site_id == site_id).order_by(Placement.name)).all()
    return [_config(r) for r in rows]


def _config(row) -> PlacementConfig:
    return PlacementConfig(name=row.name, page_kind=row.page_kind, algorithm=row.algorithm, n=row.n,
                           title=row.title, exclude_seen=row.exclude_seen, only_available=row.only_available,
                           same_category=row.same_category, fallback=tuple(row.fallback or ()),
                           diversity=float(row.diversity or 0.0), max_per_category=row.max_per_category,
                           pinned=tuple((p["item"], int(p["position"])) for p in row.pinned or ()),
                           blocked=tuple(row.blocked or ()),
                           rules=tuple(rule_from_json(r) for r in row.rules or ()))


def all_placements(engine: Engine, site_id: int | None = None) -> dict[int, dict[str, PlacementConfig]]:
    """site id -> name -> settings, of every site (or of ``site_id`` alone), in one query."""
    query = select(Placement)
    if site_id is not None:
        query = query.where(Placement.site_id == site_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    out: dict[int, dict[str, PlacementConfig]] = {} if site_id is None else {site_id: {}}
    for r in rows:
        out.setdefault(r.site_id, {})[r.name] = _config(r)
    return out


class PlacementDirectory(PerSiteDirectory[PlacementConfig]):
    """Placement settings per site, from memory only: ``get`` never touches the database (a site nothing was
    loaded for gets the defaults). ``refresh`` (the background task, every ``refresh_s``) reloads every site, so
    changes made in another process show within that time; ``invalidate`` reloads a site at once after this
    process's own change. While the database cannot answer, the last settings loaded keep being served."""

    def get(self, site_id: int, name: str) -> PlacementConfig:
        return self.lookup(site_id, name) or default_placement(name)

    def _load(self, site_id: int | None) -> dict[int, dict[str, PlacementConfig]]:
        return all_placements(self._engine, site_id)


Controls = tuple[tuple[str, object], ...]    # (field, typed value) of CONTROLS, hashable (an experiment arm's)


def controls_from_json(body) -> Controls:
    """An experiment arm's overrides of its placement's controls from JSON (``{"diversity": 0.3}``); PlacementError
    lists every problem. Only CONTROLS may be set."""
    if body in (None, {}):
        return ()
    cfg = config_from_json("arm", body, allowed=CONTROLS)
    return tuple((k, getattr(cfg, k)) for k in CONTROLS if k in body)


def controls_as_json(controls: Controls) -> dict:
    d = PlacementConfig("arm", **dict(controls)).as_json()
    return {k: d[k] for k, _ in controls}
