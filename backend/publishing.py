"""Publishing: an artifact becomes a site's live model only after the serving side has loaded and checked it.
Used by ``upnext model publish``, ``upnext demo``, training runs and the traffic simulator; running servers swap
it in within seconds (backend/serving/registry.py).

A published model is immutable and verified: the files serving reads are copied out of the operator's folder
into ``<model_dir>/<sha256>/`` (written under a temporary name, checked there, then renamed), read-only, with
``SHA256SUMS`` listing the SHA-256 of every file; the folder's name is the SHA-256 of that list, and the model
record names the folder. Servers verify every file against it before mapping any (serving/bundle.py), so editing
or truncating the operator's copy after publishing changes nothing that is served.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from backend.artifact import ArtifactError, read_manifest
from backend.errors import UpnextError
from backend.serving.bundle import SUMS, bundle_files, check_servable, file_sha256, sums_text, verify_bundle
from backend.store.trained_models import promote, register_model


def publish_artifact(engine, site_id: int, path: Path, *, model_dir: Path) -> int:
    """Copy the bundle at ``path`` into ``model_dir`` (``store_bundle``), check that the copy can be served, then
    register it and make it the site's live model. Returns the model id."""
    stored = store_bundle(path, model_dir)
    manifest = read_manifest(stored)
    model_id = register_model(engine, site_id, stored, "gru4rec", params=manifest.get("params", {}),
                              metrics=manifest.get("metrics", {}))
    promote(engine, site_id, model_id)
    return model_id


def store_bundle(path: str | Path, model_dir: str | Path) -> Path:
    """The content-addressed, read-only copy of the bundle at ``path`` under ``model_dir`` (module docstring),
    checked by ``check_servable`` before it takes its final name; the same bundle stored twice is one folder.
    Raises UpnextError saying why the bundle cannot be served."""
    path, model_dir = Path(path), Path(model_dir)
    if not path.is_dir():
        raise UpnextError(f"{path}: no such directory")
    try:
        files = bundle_files(path)
    except ArtifactError as exc:
        raise UpnextError(f"the bundle cannot be served: {exc}") from None
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=model_dir))
    try:
        hashes = {}
        for name in files:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copyfile(path / name, tmp / name)
            except OSError as exc:
                raise UpnextError(f"{path / name}: cannot copy ({exc.strerror or exc})") from None
            hashes[name] = file_sha256(tmp / name)
        check_servable(tmp)               # the copy is what will be served: check it, not the operator's folder
        sums = sums_text(hashes)
        (tmp / SUMS).write_bytes(sums)
        for name in [*files, SUMS]:
            os.chmod(tmp / name, 0o444)
        _fsync_tree(tmp)
        final = model_dir / hashlib.sha256(sums).hexdigest()
        if final.exists():
            try:
                verify_bundle(final)
                shutil.rmtree(tmp, ignore_errors=True)
                return final          # already stored, intact
            except ArtifactError:     # a damaged earlier copy: replaced by this one
                damaged = final.with_name(f".damaged-{final.name}-{os.getpid()}")
                final.rename(damaged)
                shutil.rmtree(damaged, ignore_errors=True)
        tmp.rename(final)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync_tree(root: Path) -> None:
    for dirpath, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as f:
                os.fsync(f.fileno())
