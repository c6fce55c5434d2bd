"""Each host's local copy of the models it serves: ``<data>/models/<sha256>/``, fetched from the blob store
(backend/store/blobs.py) when a model the host lacks becomes live, verified, and removed when no longer live.

``local(record)`` gives the folder to load: the cached one when it is intact, else a fresh copy rebuilt from the
store (written under a temporary name, every file checked against its SHA-256 while it streams in, the list
against the folder's name, then renamed: a reader never sees half a model). A model registered before models
travelled through the store (no ``sha256``) is served from its recorded path, as before.

``prune(keep)`` deletes cached bundles that are not in ``keep``, only when the store holds them (so the only
copy of anything is never deleted) and only when untouched for ``grace_s`` (a bundle just published or trained
on this host may not be registered yet).
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from backend.artifact import ArtifactError
from backend.serving.bundle import DIGEST, SUMS, verify_bundle
from backend.store.blobs import BlobError, BlobStore, read_sums
from backend.store.trained_models import ModelRecord

log = logging.getLogger(__name__)

PRUNE_GRACE_S = 3600.0


class ModelCache:
    def __init__(self, model_dir: Path, blobs: BlobStore, *, grace_s: float = PRUNE_GRACE_S):
        self.model_dir, self.blobs, self.grace_s = Path(model_dir), blobs, grace_s

    def local(self, record: ModelRecord) -> Path:
        """The folder of ``record``'s bundle on this host (fetched when missing or damaged). Raises
        ArtifactError when it cannot be had."""
        if not record.sha256:
            return Path(record.path)
        folder = self.model_dir / record.sha256
        if folder.is_dir():
            try:
                verify_bundle(folder)
                return folder
            except ArtifactError as exc:
                log.warning("cached model damaged; fetching it again", extra={"path": str(folder),
                                                                              "reason": str(exc)})
                _remove(folder)
        return self.fetch(record.sha256)

    def fetch(self, digest: str) -> Path:
        """Rebuild the bundle ``digest`` from the store into the cache; returns its folder."""
        started = time.monotonic()
        self.model_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".fetching-", dir=self.model_dir))
        try:
            try:
                self.blobs.get(digest, tmp / SUMS)
                files = read_sums((tmp / SUMS).read_bytes())
                for name, file_digest in files.items():
                    (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                    self.blobs.get(file_digest, tmp / name)
            except BlobError as exc:
                raise ArtifactError(f"model {digest[:12]}... cannot be fetched from the store: {exc}") from None
            for name in [*files, SUMS]:
                os.chmod(tmp / name, 0o444)
            final = self.model_dir / digest
            try:
                tmp.rename(final)
            except OSError:
                if not final.is_dir():
                    raise
                _remove(tmp)                          # another process fetched it meanwhile
            verify_bundle(final)
        except BaseException:
            _remove(tmp)
            raise
        size = sum(f.stat().st_size for f in final.rglob("*") if f.is_file())
        log.info("model fetched", extra={"sha256": digest, "bytes": size,
                                         "seconds": round(time.monotonic() - started, 3)})
        return final

    def prune(self, keep: set[str]) -> list[str]:
        """Delete cached bundles not in ``keep`` (module docstring); returns the digests deleted."""
        if not self.model_dir.is_dir():
            return []
        now, gone = time.time(), []
        for folder in self.model_dir.iterdir():
            name = folder.name
            if name.startswith(".fetching-") and now - folder.stat().st_mtime > self.grace_s:
                _remove(folder)      # left by a fetch that was killed
                continue
            if not DIGEST.fullmatch(name) or name in keep or not folder.is_dir():
                continue
            if now - folder.stat().st_mtime <= self.grace_s or not self.blobs.has(name):
                continue
            _remove(folder)
            gone.append(name)
        if gone:
            log.info("cached models removed", extra={"sha256": gone})
        return gone


def _remove(folder: Path) -> None:
    """Delete a read-only bundle folder (its files are 0444: make the folders writable first)."""
    for root, dirs, _ in os.walk(folder):
        os.chmod(root, 0o755)
    shutil.rmtree(folder, ignore_errors=True)
