"""Sites and their keys: create, list, rotate, and an in-memory directory for per-request key checks."""
from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import Engine, select

from backend.clock import now_ms
from backend.errors import UpnextError
from backend.store.tables import Site

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")


class SiteError(UpnextError, ValueError):
    """A site cannot be created or changed as asked."""


@dataclass(frozen=True)
class SiteKeys:
    site_id: int
    name: str
    publishable_key: str
    secret_key: str
    allowed_origins: tuple[str, ...]

    def as_json(self) -> dict:
        return {"site": self.name, "id": self.site_id, "publishable_key": self.publishable_key,
                "secret_key": self.secret_key, "allowed_origins": list(self.allowed_origins)}


@dataclass(frozen=True)
class SiteInfo:
    """What a request needs to know about the site behind a key."""
    id: int
    name: str
    origins: frozenset[str]
    require_origin: bool = False     # refuse events without an Origin header (scripts) with 403

    def allows_origin(self, origin: str) -> bool:
        return "*" in self.origins or origin in self.origins


def hash_secret(secret_key: str) -> str:
    # Secret keys are 32 random bytes: a plain SHA-256 cannot be brute-forced, and lookup stays O(1).
    return hashlib.sha256(secret_key.encode()).hexdigest()


def normalise_origin(origin: str) -> str:
    """``https://Shop.example:443/`` -> ``https://shop.example``; ``*`` allows any origin (development)."""
    origin = origin.strip()
    if origin == "*":
        return origin
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SiteError(f"origin must look like https://shop.example, got {origin!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise SiteError(f"origin is scheme://host[:port] only, without a path, got {origin!r}")
    host = parts.hostname.lower()
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return f"{parts.scheme}://{host}{port}"


def _new_keys() -> tuple[str, str]:
    return "pk_live_" + secrets.token_urlsafe(18), "sk_live_" + secrets.token_urlsafe(32)


def create_site(engine: Engine, name: str, origins: list[str], *, require_origin: bool = False) -> SiteKeys:
    if not NAME_RE.match(name or ""):
        raise SiteError("site name: 1-100 letters, digits, spaces, '_', '.', '-', starting with a letter or digit")
    clean = sorted({normalise_origin(o) for o in origins})
    pk, sk = _new_keys()
    with engine.begin() as conn:
        if conn.execute(select(Site.id).where(Site.name == name)).first():
            raise SiteError(f"a site named {name!r} exists already")
        site_id = conn.execute(Site.__table__.insert().values(
            name=name, allowed_origins=clean, publishable_key=pk, secret_key_hash=hash_secret(sk),
            created_ms=now_ms(), require_origin=require_origin)).inserted_primary_key[0]
    return SiteKeys(site_id, name, pk, sk, tuple(clean))


def rotate_keys(engine: Engine, name: str) -> SiteKeys:
    """New publishable and secret keys for the site; the old ones stop working at once."""
    pk, sk = _new_keys()
    with engine.begin() as conn:
        row = conn.execute(select(Site.id, Site.allowed_origins).where(Site.name == name)).first()
        if row is None:
            raise SiteError(f"no site named {name!r}")
        conn.execute(Site.__table__.update().where(Site.id == row.id).values(
            publishable_key=pk, secret_key_hash=hash_secret(sk)))
    return SiteKeys(row.id, name, pk, sk, tuple(row.allowed_origins))


def set_origins(engine: Engine, name: str, origins: list[str]) -> tuple[str, ...]:
    clean = sorted({normalise_origin(o) for o in origins})
    with engine.begin() as conn:
        n = conn.execute(Site.__table__.update().where(Site.name == name).values(allowed_origins=clean)).rowcount
    if not n:
        raise SiteError(f"no site named {name!r}")
    return tuple(clean)


def set_require_origin(engine: Engine, name: str, require: bool) -> bool:
    """Whether the site refuses events that carry no Origin header (anything but a browser page)."""
    with engine.begin() as conn:
        n = conn.execute(Site.__table__.update().where(Site.name == name)
                         .values(require_origin=bool(require))).rowcount
    if not n:
        raise SiteError(f"no site named {name!r}")
    return bool(require)


def list_sites(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(Site.id, Site.name, Site.publishable_key, Site.allowed_origins,
                                Site.created_ms, Site.require_origin).order_by(Site.id)).all()
    return [{"id": r.id, "name": r.name, "publishable_key": r.publishable_key,
             "allowed_origins": list(r.allowed_origins), "require_origin": bool(r.require_origin),
             "created_ms": r.created_ms} for r in rows]


def site_by_name(engine: Engine, name: str) -> dict:
    for s in list_sites(engine):
        if s["name"] == name:
            return s
    raise SiteError(f"no site named {name!r} (see `upnext site list`)")


def sites_by_name(engine: Engine, names) -> dict[str, tuple[int, str]]:
    """name -> (site id, publishable key) of the named sites that exist."""
    with engine.connect() as conn:
        rows = conn.execute(select(Site.name, Site.id, Site.publishable_key).where(Site.name.in_(list(names)))).all()
    return {r.name: (r.id, r.publishable_key) for r in rows}


class SiteDirectory:
    """Key -> site lookups for every request, from memory only: a lookup never touches the database.

    ``reload`` reads the table: at start-up, after this process's own changes, and from the background task
    that calls ``refresh_if_due`` (every ``refresh_s``, and early after a lookup missed, so a key created or
    rotated by another process works within about ``miss_reload_s``). A flood of unknown keys costs at most one
    query per ``miss_reload_s``, run in the background; while the database cannot answer, the last table loaded
    keeps being served.
    """

    def __init__(self, engine: Engine, *, refresh_s: float = 30.0, miss_reload_s: float = 1.0):
        self._engine = engine
        self._refresh_s, self._miss_reload_s = refresh_s, miss_reload_s
        self._by_pk: dict[str, SiteInfo] = {}
        self._by_secret: dict[str, SiteInfo] = {}
        self._origins: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")
        self._tried_at = float("-inf")
        self._missed = False
        self._lock = threading.Lock()

    def reload(self) -> None:
        with self._engine.connect() as conn:
            rows = conn.execute(select(Site.id, Site.name, Site.allowed_origins, Site.publishable_key,
                                       Site.secret_key_hash, Site.require_origin)).all()
        by_pk, by_secret = {}, {}
        for r in rows:
            info = SiteInfo(r.id, r.name, frozenset(r.allowed_origins), bool(r.require_origin))
            by_pk[r.publishable_key] = info
            by_secret[r.secret_key_hash] = info
        with self._lock:
            self._by_pk, self._by_secret = by_pk, by_secret
            self._origins = frozenset(o for s in by_pk.values() for o in s.origins)
            self._loaded_at = time.monotonic()

    def refresh_if_due(self) -> bool:
        """Reload when the table is older than ``refresh_s`` or a lookup missed since the last attempt, at most
        once per ``miss_reload_s`` (a failed attempt too). True when it reloaded; raises what ``reload`` raises
        (the last table stays in use)."""
        now = time.monotonic()
        if now - self._tried_at < self._miss_reload_s:
            return False
        if not self._missed and now - self._loaded_at <= self._refresh_s:
            return False
        self._tried_at, self._missed = now, False
        self.reload()
        return True

    def _get(self, table: dict[str, SiteInfo], key: str) -> SiteInfo | None:
        hit = table.get(key)
        if hit is None:
            self._missed = True          # the background task reloads soon; this request is answered now
        return hit

    def by_publishable_key(self, key: str) -> SiteInfo | None:
        return self._get(self._by_pk, key)

    def by_secret_key(self, key: str) -> SiteInfo | None:
        return self._get(self._by_secret, hash_secret(key))

    def by_id(self, site_id: int) -> SiteInfo | None:
        return next((s for s in self._by_pk.values() if s.id == site_id), None)

    def sites_naming(self, origin: str) -> list[SiteInfo]:
        """The sites that list ``origin`` itself (not through ``*``): whose pages loaded the script from there."""
        return [s for s in self._by_pk.values() if origin in s.origins]

    def any_site_allows(self, origin: str) -> bool:
        """For CORS preflights, which carry no key: is the origin allowed for some site?"""
        allowed = "*" in self._origins or origin in self._origins
        if not allowed:
            self._missed = True          # an origin added by another process shows after the next reload
        return allowed
