"""Files in the store, content-addressed by SHA-256: how model bundles reach every serving host without a shared
filesystem.

``BlobStore`` is the whole interface (``has``, ``put``, ``get``); ``DatabaseBlobs`` keeps blobs in the database
(``blobs`` + ``blob_chunks``, CHUNK_BYTES per row, so neither writing nor reading a 1 GB model holds more than a
chunk in memory, on SQLite and PostgreSQL alike). An object store (S3, GCS, MinIO) would be a second class with
the same three methods keyed by the digest, chosen in ``blob_store``.

A published model bundle (backend/publishing.py) is a folder named by the SHA-256 of its ``SHA256SUMS``;
``share_bundle`` puts that list and every file it names into the store, each under its own SHA-256, so a host
that knows the folder's name can rebuild it (backend/serving/model_cache.py) and identical files are stored once.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from backend.clock import now_ms
from backend.errors import UpnextError
from backend.store.tables import Blob, BlobChunk

CHUNK_BYTES = 4 << 20
SUMS = "SHA256SUMS"
DIGEST = re.compile(r"[0-9a-f]{64}")


class BlobError(UpnextError):
    """A blob is missing, or its bytes are not those its digest names."""


class BlobStore(Protocol):
    def has(self, digest: str) -> bool:
        """Whether the whole blob is stored."""

    def put(self, digest: str, path: Path) -> None:
        """Store the file at ``path`` under ``digest`` (its SHA-256); nothing when already stored. BlobError when
        the file's SHA-256 is not ``digest`` (nothing is stored then)."""

    def get(self, digest: str, dest: Path) -> None:
        """Write the blob to ``dest``; BlobError when it is missing or its bytes do not hash to ``digest``."""


class DatabaseBlobs:
    def __init__(self, engine: Engine, *, chunk_bytes: int = CHUNK_BYTES):
        self.engine, self.chunk_bytes = engine, chunk_bytes

    def has(self, digest: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(Blob.sha256).where(Blob.sha256 == digest)).first() is not None

    def put(self, digest: str, path: Path) -> None:
        _check_digest(digest)
        if self.has(digest):
            return
        # One short transaction per chunk (a long one would hold SQLite's write lock, and the events' commits
        # behind it, for the whole upload); the blob is present once its ``blobs`` row, written last, exists.
        hasher, size, seq = hashlib.sha256(), 0, 0
        with open(path, "rb") as f:
            while chunk := f.read(self.chunk_bytes):
                hasher.update(chunk)
                size += len(chunk)
                self._put_chunk(digest, seq, chunk)
                seq += 1
        if hasher.hexdigest() != digest:
            with self.engine.begin() as conn:
                conn.execute(delete(BlobChunk).where(BlobChunk.sha256 == digest))
            raise BlobError(f"{path}: SHA-256 {hasher.hexdigest()[:12]}..., not {digest[:12]}...")
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(Blob).values(sha256=digest, size=size, chunks=seq, created_ms=now_ms()))
        except IntegrityError:      # another process stored the same blob meanwhile
            if not self.has(digest):
                raise

    def _put_chunk(self, digest: str, seq: int, data: bytes) -> None:
        """Write chunk ``seq``, replacing one left by an upload that stopped halfway (or racing this one: the
        same digest has the same bytes)."""
        with self.engine.begin() as conn:
            conn.execute(delete(BlobChunk).where(BlobChunk.sha256 == digest, BlobChunk.seq == seq))
            try:
                with conn.begin_nested():
                    conn.execute(insert(BlobChunk).values(sha256=digest, seq=seq, data=data))
            except IntegrityError:  # a racing upload wrote it between the delete and the insert
                pass

    def get(self, digest: str, dest: Path) -> None:
        _check_digest(digest)
        with self.engine.connect() as conn:
            head = conn.execute(select(Blob.size, Blob.chunks).where(Blob.sha256 == digest)).first()
        if head is None:
            raise BlobError(f"blob {digest[:12]}... is not in the store")
        hasher, size = hashlib.sha256(), 0
        with open(dest, "wb") as f:
            for seq in range(head.chunks):          # one chunk per query: memory stays at one chunk
                with self.engine.connect() as conn:
                    data = conn.execute(select(BlobChunk.data).where(BlobChunk.sha256 == digest,
                                                                     BlobChunk.seq == seq)).scalar()
                if data is None:
                    raise BlobError(f"blob {digest[:12]}...: chunk {seq} is missing")
                hasher.update(data)
                size += len(data)
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if size != head.size or hasher.hexdigest() != digest:
            raise BlobError(f"blob {digest[:12]}...: stored bytes hash to {hasher.hexdigest()[:12]}... "
                            f"({size} bytes, {head.size} recorded)")

    def stored_bytes(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.sum(Blob.size), 0))).scalar())


def blob_store(engine: Engine) -> BlobStore:
    """The store model files travel through: the database (the one place every host already reaches)."""
    return DatabaseBlobs(engine)


def read_sums(text: bytes) -> dict[str, str]:
    """``SHA256SUMS`` (sha256sum format) -> {relative name: hex SHA-256}; BlobError on a malformed line."""
    out = {}
    for line in text.decode("utf-8", "replace").splitlines():
        digest, sep, name = line.partition("  ")
        if not sep or not DIGEST.fullmatch(digest) or not name or name.startswith("/") or ".." in name.split("/"):
            raise BlobError(f"{SUMS}: malformed line {line[:100]!r}")
        out[name] = digest
    return out


def share_bundle(blobs: BlobStore, folder: Path) -> str:
    """Put the content-addressed bundle ``folder`` (named by the SHA-256 of its SHA256SUMS) into ``blobs``:
    every file its SHA256SUMS lists, then the list itself. Returns the bundle's digest."""
    folder = Path(folder)
    digest = folder.name
    _check_digest(digest)
    if blobs.has(digest):
        return digest
    for name, file_digest in read_sums((folder / SUMS).read_bytes()).items():
        blobs.put(file_digest, folder / name)
    blobs.put(digest, folder / SUMS)         # last: a bundle whose list is stored has all its files stored
    return digest


def _check_digest(digest: str) -> None:
    if not DIGEST.fullmatch(digest or ""):
        raise BlobError(f"not a SHA-256 digest: {digest!r}")
