"""Model artifacts: plain arrays (``.npy``) plus a JSON manifest. Never pickles; loading runs no code.

Written by the trainer (and by the baselines), read by evaluation and by serving, which must not import torch.

Layout of a GRU4Rec artifact directory::

    manifest.json          {"format": "upnext-gru4rec", "format_version": 1, "params": {...},
                            "layers": [H_0, ..., H_{L-1}], "embedding": "shared" | "separate" | "onehot",
                            "item_ids": [...], "support": [...], "metrics": {...}, "data": {...},
                            "arrays": {"Wy": {"shape": [...], "dtype": "float32"}, ...}, "created": "..."}
    Wy.npy                 (n_items, H_{L-1}) float32   output item vectors (also the input rows in shared mode)
    By.npy                 (n_items,) float32           output item biases
    E.npy                  (n_items, embedding) float32 input item vectors ("separate" mode only)
    layer{l}.Wx.npy        (in_l, 3*H_l) float32        input weights, column blocks [r | z | n]
                           in_0 = H_{L-1} (shared), embedding (separate), n_items (onehot: row i IS x@Wx)
    layer{l}.Wrz.npy       (H_l, 2*H_l) float32         recurrent weights of the reset and update gates [r | z]
    layer{l}.Wh.npy        (H_l, H_l) float32           recurrent weights of the candidate
    layer{l}.b.npy         (3*H_l,) float32             biases [r | z | n]

One GRU step for input vector x (or, in onehot mode, the row a = Wx[i] + b) and state h::

    a = x @ Wx + b ;  g = h @ Wrz
    r = sigmoid(a[:H] + g[:H]) ;  z = sigmoid(a[H:2H] + g[H:])
    n = tanh(a[2H:] + (r * h) @ Wh)
    h' = z * h + (1 - z) * n

Layer l > 0 takes the previous layer's new state as x. Scores of all items: ``h'_{L-1} @ Wy.T + By``; the final
activation is monotone, so ranking needs the raw scores only.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import UpnextError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
# An array's name is a plain file name inside the artifact directory: "layer0.Wx", never a path, never "..".
ARRAY_NAME = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")


class ArtifactError(UpnextError):
    """An artifact is missing, broken or of a format this code cannot read."""


@dataclass(frozen=True)
class Artifact:
    path: Path
    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def kind(self) -> str:
        return self.manifest["format"]

    @property
    def item_ids(self) -> list[str]:
        return self.manifest["item_ids"]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]


def save_artifact(path: str | Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write atomically: into a temporary sibling directory, then renamed into place (replacing ``path``)."""
    path = Path(path)
    if "format" not in manifest:
        raise ValueError("manifest needs a 'format'")
    for name in arrays:
        if not ARRAY_NAME.fullmatch(name):
            raise ValueError(f"array name {name!r}: letters, digits, '_' and single inner dots only")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        described = {}
        for name, arr in arrays.items():
            arr = np.ascontiguousarray(arr)
            if arr.dtype == object:
                raise ValueError(f"array {name!r} has dtype object: artifacts hold numbers only")
            np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
            described[name] = {"shape": list(arr.shape), "dtype": str(arr.dtype)}
        full = {"format_version": FORMAT_VERSION, **manifest, "arrays": described,
                "created": manifest.get("created") or datetime.now(timezone.utc).isoformat(timespec="seconds")}
        with open(tmp / MANIFEST, "w") as f:
            json.dump(full, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of the artifact at ``path``, checked for what every reader relies on: a JSON object of this
    format version whose ``arrays`` maps plain file names (``ARRAY_NAME``) to {"shape": [...], "dtype": "..."}."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no {MANIFEST} (not a model artifact)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}/{MANIFEST} is not valid JSON: {exc}") from None
    except OSError as exc:
        raise ArtifactError(f"{path}/{MANIFEST}: cannot read ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("arrays"), dict):
        raise ArtifactError(f"{path}/{MANIFEST}: not an Upnext manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: format version {manifest.get('format_version')!r}, this code reads "
                            f"{FORMAT_VERSION}")
    for name, desc in manifest["arrays"].items():
        if not ARRAY_NAME.fullmatch(name):
            raise ArtifactError(f"{path}/{MANIFEST}: array name {name!r} is not a plain file name (letters, "
                                "digits, '_' and inner dots)")
        shape = desc.get("shape") if isinstance(desc, dict) else None
        if (not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape)
                or not isinstance(desc.get("dtype"), str)):
            raise ArtifactError(f"{path}/{MANIFEST}: array {name!r} needs a shape (list of sizes) and a dtype")
    return manifest


def array_files(manifest: dict[str, Any]) -> list[str]:
    """The files of an artifact (its manifest's arrays and the manifest itself), names relative to its folder."""
    return [MANIFEST] + [f"{name}.npy" for name in manifest["arrays"]]


def load_artifact(path: str | Path, *, mmap: bool = True, expect_format: str | None = None) -> Artifact:
    """Read and check an artifact: manifest version, every listed array present with its shape and dtype (each
    ``.npy`` header checked against the manifest and the file's size before any data is read), floats finite.
    ``mmap`` maps arrays read-only, so worker processes share one copy in memory."""
    path = Path(path)
    manifest = read_manifest(path)
    if expect_format and manifest.get("format") != expect_format:
        raise ArtifactError(f"{path}: a {manifest.get('format')!r} artifact, expected {expect_format!r}")
    arrays = {}
    for name, desc in manifest["arrays"].items():
        file = path / f"{name}.npy"
        _check_npy_header(file, desc)
        try:
            arr = np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{file}: cannot read ({exc})") from None
        if list(arr.shape) != desc.get("shape") or str(arr.dtype) != desc.get("dtype"):
            raise ArtifactError(f"{file}: shape {arr.shape} {arr.dtype}, manifest says "
                                f"{desc.get('shape')} {desc.get('dtype')}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ArtifactError(f"{file}: contains NaN or infinite values")
        arrays[name] = arr
    return Artifact(path, manifest, arrays)


def _check_npy_header(file: Path, desc: dict[str, Any]) -> None:
    """Refuse a ``.npy`` file whose header disagrees with the manifest or whose size is not exactly header +
    data, before anything is allocated for it (a header may claim any shape)."""
    try:
        with open(file, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ArtifactError(f"{file}: .npy format version {version} is not read here")
            offset, size = f.tell(), os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise ArtifactError(f"{file}: missing") from None
    except (OSError, ValueError, SyntaxError, TypeError) as exc:
        raise ArtifactError(f"{file}: not a readable .npy file ({exc})") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise ArtifactError(f"{file}: dtype {dtype} (artifacts hold plain numbers only)")
    if list(shape) != desc["shape"] or str(dtype) != desc["dtype"]:
        raise ArtifactError(f"{file}: header says {list(shape)} {dtype}, manifest says {desc['shape']} "
                            f"{desc['dtype']}")
    if fortran:
        raise ArtifactError(f"{file}: Fortran-ordered data (artifacts are written C-ordered)")
    expected = offset + int(np.prod(shape, dtype=object)) * dtype.itemsize
    if size != expected:
        raise ArtifactError(f"{file}: {size} bytes, its header ({list(shape)} {dtype}) needs {expected}")
