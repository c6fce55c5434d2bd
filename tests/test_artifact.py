"""Artifacts on disk: what load_artifact refuses before reading anything it should not (issue 13, finding 11)."""
import json
import tracemalloc

import numpy as np
import pytest

from backend.artifact import ArtifactError, load_artifact, save_artifact
from tests.support.bundles import huge_header


@pytest.fixture
def small(tmp_path):
    return save_artifact(tmp_path / "art", {"format": "test"}, {"a": np.arange(6, dtype=np.float32).reshape(2, 3),
                                                                "layer0.b": np.zeros(3, np.int32)})


def test_a_good_artifact_loads(small):
    for mmap in (True, False):
        art = load_artifact(small, mmap=mmap)
        assert art["a"].tolist() == [[0, 1, 2], [3, 4, 5]] and art["layer0.b"].dtype == np.int32


@pytest.mark.parametrize("name", ["SECRET", "../outside/secret", "sub/../../outside/secret", "..", ".hidden", "a/b"])
def test_array_names_are_plain_file_names_inside_the_artifact(small, tmp_path, name):
    """An array name that is a path would read any .npy on the host (an absolute name replaces the folder)."""
    (tmp_path / "outside").mkdir()
    np.save(tmp_path / "outside" / "secret.npy", np.ones(2, np.float32))
    name = str(tmp_path / "outside" / "secret") if name == "SECRET" else name
    manifest = json.loads((small / "manifest.json").read_text())
    manifest["arrays"][name] = {"shape": [2], "dtype": "float32"}
    (small / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="not a plain file name"):
        load_artifact(small)


@pytest.mark.parametrize("name", ["../x", "/tmp/x", "a..b", ".x", "a/b"])
def test_save_refuses_names_that_are_not_plain_file_names(tmp_path, name):
    with pytest.raises(ValueError, match="array name"):
        save_artifact(tmp_path / "art", {"format": "test"}, {name: np.zeros(1)})


@pytest.mark.parametrize("mmap", [False, True])
def test_a_header_claiming_more_than_the_file_holds_is_refused_before_reading(small, mmap):
    """A 37 GiB shape in a 12-byte file: refused from its header and size, nothing allocated for it."""
    huge_header(small, "a")
    tracemalloc.start()
    try:
        with pytest.raises(ArtifactError, match=r"bytes, its header \(\[100000, 100000\] float32\) needs"):
            load_artifact(small, mmap=mmap)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


@pytest.mark.parametrize("change, message", [
    ({"shape": [3, 2]}, "header says"),
    ({"dtype": "float64"}, "header says"),
    ({"shape": "2x3"}, "needs a shape"),
    ({"shape": [2, -3]}, "needs a shape"),
])
def test_header_and_manifest_must_agree(small, change, message):
    manifest = json.loads((small / "manifest.json").read_text())
    manifest["arrays"]["a"].update(change)
    (small / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=message):
        load_artifact(small)


def test_truncated_and_padded_files_are_refused(small):
    data = (small / "a.npy").read_bytes()
    for broken in (data[:-4], data + b"\0" * 4, data[:20], b""):
        (small / "a.npy").write_bytes(broken)
        with pytest.raises(ArtifactError):
            load_artifact(small, mmap=False)


def test_object_arrays_are_refused_without_unpickling(small):
    with open(small / "a.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": (2, 3)})
    manifest = json.loads((small / "manifest.json").read_text())
    manifest["arrays"]["a"]["dtype"] = "object"
    (small / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="plain numbers"):
        load_artifact(small)
