"""Model bundles broken the ways the hardening issue (#13) found, made from a good random one."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from backend.artifact import load_artifact, save_artifact


def add_itemknn(bundle: Path, neighbours: np.ndarray | None = None) -> Path:
    """Give ``bundle`` an item-kNN fallback over its items: ``neighbours`` as given (e.g. out of range), else
    each item's next two items."""
    ids = load_artifact(bundle).item_ids
    n = len(ids)
    if neighbours is None:
        neighbours = np.stack([(np.arange(n) + 1) % n, (np.arange(n) + 2) % n], axis=1).astype(np.int32)
    save_artifact(bundle / "itemknn", {"format": "upnext-itemknn", "item_ids": ids, "support": [1] * n,
                                       "params": {}, "metrics": {}, "data": {}},
                  {"neighbours": neighbours, "similarities": np.ones(neighbours.shape, np.float32)})
    return bundle


def out_of_range_neighbours(bundle: Path) -> Path:
    """An item-kNN fallback whose neighbour list names an item index past the end of its catalogue."""
    n = len(load_artifact(bundle).item_ids)
    neighbours = np.full((n, 2), -1, np.int32)
    neighbours[3, 0] = n + 5
    return add_itemknn(bundle, neighbours)


def huge_header(bundle: Path, name: str = "By") -> Path:
    """Replace ``name``.npy with a file whose header (and manifest) claim 100000 x 100000 float32 (37 GiB) while
    the file holds 12 bytes of data."""
    file = bundle / f"{name}.npy"
    header = {"descr": "<f4", "fortran_order": False, "shape": (100_000, 100_000)}
    with open(file, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 12)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["arrays"][name] = {"shape": [100_000, 100_000], "dtype": "float32"}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    return bundle


def set_row(bundle: Path, name: str, row: int, value: float) -> Path:
    """Set one row of an array to ``value`` (e.g. 3e38: finite, but no trained weight)."""
    arr = np.load(bundle / f"{name}.npy")
    arr[row] = value
    np.save(bundle / f"{name}.npy", arr)
    return bundle
