"""Files in the store, content-addressed, in chunks (issue 16, part 1), on SQLite and PostgreSQL."""
import hashlib

import pytest
from sqlalchemy import text

from backend.store.blobs import BlobError, DatabaseBlobs, read_sums, share_bundle
from backend.store.db import make_engine


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def write(path, data: bytes):
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_a_file_goes_in_by_chunks_and_comes_back_identical(engine, tmp_path):
    blobs = DatabaseBlobs(engine, chunk_bytes=1000)
    src, digest = write(tmp_path / "a.bin", bytes(range(256)) * 41)          # 10,496 bytes: 11 chunks
    assert not blobs.has(digest)
    blobs.put(digest, src)
    blobs.put(digest, src)                                                    # again: nothing more stored
    assert blobs.has(digest) and blobs.stored_bytes() == 10_496
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM blob_chunks")).scalar() == 11
    blobs.get(digest, tmp_path / "b.bin")
    assert (tmp_path / "b.bin").read_bytes() == src.read_bytes()


def test_an_upload_that_stopped_halfway_is_absent_and_the_next_one_completes_it(engine, tmp_path):
    blobs = DatabaseBlobs(engine, chunk_bytes=10)
    src, digest = write(tmp_path / "a.bin", b"0123456789" * 3)
    with engine.begin() as conn:                        # chunks 0 and 1 of a crashed upload, one of them torn
        conn.execute(text("INSERT INTO blob_chunks (sha256, seq, data) VALUES (:s, 0, :d), (:s, 1, :e)"),
                     {"s": digest, "d": b"0123456789", "e": b"01"})
    assert not blobs.has(digest)
    with pytest.raises(BlobError, match="not in the store"):
        blobs.get(digest, tmp_path / "out")
    blobs.put(digest, src)
    blobs.get(digest, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == src.read_bytes()


def test_an_empty_file_is_a_blob_too(engine, tmp_path):
    blobs = DatabaseBlobs(engine)
    src, digest = write(tmp_path / "empty", b"")
    blobs.put(digest, src)
    blobs.get(digest, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b""


def test_a_file_that_does_not_hash_to_its_digest_is_refused_and_nothing_is_stored(engine, tmp_path):
    blobs = DatabaseBlobs(engine, chunk_bytes=10)
    src, _ = write(tmp_path / "a.bin", b"x" * 100)
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(BlobError, match="SHA-256"):
        blobs.put(wrong, src)
    assert not blobs.has(wrong)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM blob_chunks")).scalar() == 0


@pytest.mark.parametrize("digest", ["", "abc", "../" + "0" * 61, "A" * 64])
def test_a_bad_digest_is_refused(engine, tmp_path, digest):
    with pytest.raises(BlobError, match="not a SHA-256"):
        DatabaseBlobs(engine).get(digest, tmp_path / "x")


def test_a_missing_blob_is_said(engine, tmp_path):
    with pytest.raises(BlobError, match="not in the store"):
        DatabaseBlobs(engine).get("0" * 64, tmp_path / "x")


def test_bytes_changed_in_the_database_are_detected_on_the_way_out(engine, tmp_path):
    blobs = DatabaseBlobs(engine, chunk_bytes=10)
    src, digest = write(tmp_path / "a.bin", b"0123456789" * 5)
    blobs.put(digest, src)
    with engine.begin() as conn:
        conn.execute(text("UPDATE blob_chunks SET data = :d WHERE seq = 2"), {"d": b"abcdefghij"})
    with pytest.raises(BlobError, match="hash to"):
        blobs.get(digest, tmp_path / "out")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM blob_chunks WHERE seq = 3"))
    with pytest.raises(BlobError, match="chunk 3 is missing"):
        blobs.get(digest, tmp_path / "out")


def test_share_bundle_stores_the_list_and_every_file_it_names(engine, tmp_path):
    folder_files = {"manifest.json": b"{}", "sub/w.npy": b"weights"}
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(folder_files.items())).encode()
    folder = tmp_path / hashlib.sha256(sums).hexdigest()
    (folder / "sub").mkdir(parents=True)
    for name, data in folder_files.items():
        (folder / name).write_bytes(data)
    (folder / "SHA256SUMS").write_bytes(sums)
    blobs = DatabaseBlobs(engine)
    assert share_bundle(blobs, folder) == folder.name
    assert blobs.has(folder.name)
    assert all(blobs.has(d) for d in read_sums(sums).values())


@pytest.mark.parametrize("line", ["nonsense", "0" * 64 + " one-space", "0" * 64 + "  /etc/passwd",
                                  "0" * 64 + "  a/../../x"])
def test_a_malformed_or_escaping_sums_line_is_refused(line):
    with pytest.raises(BlobError, match="malformed"):
        read_sums(line.encode())
