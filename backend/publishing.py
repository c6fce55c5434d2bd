"""Publishing: an artifact becomes a site's live model only after the serving side has loaded and checked it.
Used by ``upnext model publish``, ``upnext demo`` and the traffic simulator; running servers swap it in within
seconds (backend/serving/live.py)."""
from __future__ import annotations

from pathlib import Path

from backend.serving.bundle import check_servable
from backend.store.trained_models import promote, register_model


def publish_artifact(engine, site_id: int, path: Path) -> int:
    """Check that the artifact can be served, then register it and make it the site's live model."""
    eng = check_servable(path)
    model_id = register_model(engine, site_id, path, "gru4rec", params=eng.manifest.get("params", {}),
                              metrics=eng.manifest.get("metrics", {}))
    promote(engine, site_id, model_id)
    return model_id
