"""Trained model records: which artifacts exist for a site, which one is live, and the promotion history.

A model registered from a published (content-addressed) bundle has its files put into the blob store
(backend/store/blobs.py) first, and its record carries the bundle's SHA-256: any host can then fetch it.
``path`` is where the registering host had it (meaningful on that host only)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from backend.clock import now_ms
from backend.errors import UpnextError
from backend.store.blobs import DIGEST, BlobStore, blob_store, share_bundle
from backend.store.tables import Model, Site


@dataclass(frozen=True)
class ModelRecord:
    id: int
    site_id: int
    path: str
    kind: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    created_ms: int
    promoted_ms: int | None
    live: bool
    sha256: str | None = None       # the bundle's content address in the blob store (None: local path only)


def register_model(engine: Engine, site_id: int, path: str | Path, kind: str, *, params: dict | None = None,
                   metrics: dict | None = None, blobs: BlobStore | None = None) -> int:
    """Record a model; a content-addressed bundle folder (its name a SHA-256) is shared through the blob store
    first, so every host can fetch it."""
    path = Path(path).resolve()
    sha256 = None
    if DIGEST.fullmatch(path.name) and (path / "SHA256SUMS").is_file():
        sha256 = share_bundle(blobs or blob_store(engine), path)
    with engine.begin() as conn:
        return conn.execute(Model.__table__.insert().values(
            site_id=site_id, path=str(path), kind=kind, params=params or {}, sha256=sha256,
            metrics=metrics or {}, created_ms=now_ms())).inserted_primary_key[0]


def promote(engine: Engine, site_id: int, model_id: int) -> None:
    """Make ``model_id`` the site's live model (serving processes pick it up on their next poll)."""
    with engine.begin() as conn:
        owner = conn.execute(select(Model.site_id).where(Model.id == model_id)).scalar()
        if owner != site_id:
            raise UpnextError(f"model {model_id} does not belong to this site")
        conn.execute(Model.__table__.update().where(Model.id == model_id).values(promoted_ms=now_ms()))
        conn.execute(Site.__table__.update().where(Site.id == site_id).values(live_model_id=model_id))


def rollback(engine: Engine, site_id: int) -> int:
    """Make the model that was live before the current one live again; returns its id."""
    history = [m for m in list_models(engine, site_id) if m.promoted_ms is not None]
    history.sort(key=lambda m: m.promoted_ms, reverse=True)
    live = next((m for m in history if m.live), None)
    previous = next((m for m in history if not m.live and (live is None or m.promoted_ms <= live.promoted_ms)),
                    None)
    if previous is None:
        raise UpnextError("no earlier live model to roll back to")
    promote(engine, site_id, previous.id)
    return previous.id


def list_models(engine: Engine, site_id: int) -> list[ModelRecord]:
    with engine.connect() as conn:
        live = conn.execute(select(Site.live_model_id).where(Site.id == site_id)).scalar()
        rows = conn.execute(select(Model).where(Model.site_id == site_id).order_by(Model.created_ms.desc(),
                                                                                 Model.id.desc())).all()
    return [ModelRecord(r.id, r.site_id, r.path, r.kind, r.params, r.metrics, r.created_ms, r.promoted_ms,
                        r.id == live, r.sha256) for r in rows]


def live_models(engine: Engine) -> dict[int, ModelRecord]:
    """site id -> its live model record, for every site that has one (what serving processes poll)."""
    with engine.connect() as conn:
        rows = conn.execute(select(Model).join(Site, Site.live_model_id == Model.id)).all()
    return {r.site_id: ModelRecord(r.id, r.site_id, r.path, r.kind, r.params, r.metrics, r.created_ms,
                                   r.promoted_ms, True, r.sha256) for r in rows}
