"""Placements: where a site shows recommendations and how they are chosen. Validated here, cached for serving."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from backend.algorithms import FALLBACKS, NAMES, canonical
from backend.clock import now_ms
from backend.errors import UpnextError
from backend.store.per_site import PerSiteDirectory
from backend.store.tables import Placement

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
PAGE_KINDS = ("home", "product", "category", "cart", "video", "search", "other")
MAX_N = 50


class PlacementError(UpnextError, ValueError):
    """A placement setting is not valid; the message names it."""


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
    configured: bool = True            # False: a name nobody configured, served with the defaults

    def validated(self) -> "PlacementConfig":
        if not NAME_RE.match(self.name or ""):
            raise PlacementError("name: 1-64 lowercase letters, digits, '-' or '_' (as in data-upnext=\"...\")")
        if self.page_kind not in PAGE_KINDS:
            raise PlacementError(f"page kind must be one of {', '.join(PAGE_KINDS)}")
        algorithm = canonical(self.algorithm)
        if algorithm not in NAMES:
            raise PlacementError(f"algorithm must be one of {', '.join(NAMES)}")
        if not isinstance(self.n, int) or not 1 <= self.n <= MAX_N:
            raise PlacementError(f"item count must be between 1 and {MAX_N}")
        if len(self.title) > 200:
            raise PlacementError("title: at most 200 characters")
        fallback = tuple(self.fallback)
        if any(f not in FALLBACKS for f in fallback) or len(set(fallback)) != len(fallback):
            raise PlacementError(f"fallback: an ordered choice among {', '.join(FALLBACKS)}")
        return replace(self, algorithm=algorithm, fallback=fallback)

    def as_json(self) -> dict:
        d = asdict(self)
        d["fallback"] = list(self.fallback)
        return d


def default_placement(name: str) -> PlacementConfig:
    """How a placement nobody configured is served: GRU4Rec next with the default fallbacks."""
    return PlacementConfig(name=name, configured=False)


def save_placement(engine: Engine, site_id: int, cfg: PlacementConfig) -> PlacementConfig:
    cfg = cfg.validated()
    values = {k: v for k, v in cfg.as_json().items() if k not in ("configured",)}
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
                           same_category=row.same_category, fallback=tuple(row.fallback or ()))


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
