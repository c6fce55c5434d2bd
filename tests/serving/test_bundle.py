"""Bundles: what check_servable (run by publishing) refuses, with a clean reason, and how fallbacks are checked
(issue 13, findings 3 and 11)."""
import json
import shutil

import numpy as np
import pytest

from backend.artifact import ArtifactError
from backend.errors import UpnextError
from backend.serving.bundle import check_servable, load_blend, load_fallbacks
from backend.serving.engine import GRU4RecEngine
from tests.kernels.random_model import save_random_gru4rec
from tests.support.bundles import add_itemknn, huge_header, out_of_range_neighbours, set_row

N = 60


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundle")
    return {mode: add_itemknn(save_random_gru4rec(root / mode, N, [8], mode, seed=3)) for mode in ("shared", "separate")}


def copy(src, tmp_path, name="b"):
    return shutil.copytree(src, tmp_path / name)


def test_a_good_bundle_is_servable_with_its_neighbours(good):
    eng = check_servable(good["shared"])
    popular, neighbours = load_fallbacks(eng)
    assert neighbours.shape == (N, 2) and neighbours[0].tolist() == [1, 2]


def test_out_of_range_neighbours_are_refused_with_a_reason(good, tmp_path):
    """They raised an uncaught IndexError (a traceback from `model publish`, a dead sync loop in the server)."""
    bundle = out_of_range_neighbours(copy(good["shared"], tmp_path))
    with pytest.raises(UpnextError, match=r"'neighbours' holds indices outside \[-1, 60\)"):
        check_servable(bundle)
    with pytest.raises(ArtifactError, match="outside"):
        load_fallbacks(GRU4RecEngine.load(bundle))


@pytest.mark.parametrize("neighbours, message", [
    (np.zeros((N, 2), np.float32), "integers"),
    (np.zeros((N + 1, 2), np.int32), "integers"),
    (np.zeros(N, np.int32), "integers"),
    (np.full((N, 2), -2, np.int64), "outside"),
])
def test_neighbours_of_the_wrong_dtype_shape_or_range_are_refused(good, tmp_path, neighbours, message):
    bundle = add_itemknn(copy(good["shared"], tmp_path), neighbours)
    with pytest.raises(UpnextError, match=message):
        check_servable(bundle)


@pytest.mark.parametrize("mode, name", [("shared", "By"), ("separate", "E"), ("separate", "layer0.Wx")])
def test_one_absurd_weight_row_anywhere_is_refused(good, tmp_path, mode, name):
    """A 3e38 row the trial requests never touch used to go live (only three rows were ever scored)."""
    bundle = set_row(copy(good[mode], tmp_path), name, 7, 3e38)
    with pytest.raises(UpnextError, match=f"array '{name}' row 7 holds a weight beyond"):
        check_servable(bundle)


def test_a_huge_npy_header_is_refused_with_a_reason(good, tmp_path):
    bundle = huge_header(copy(good["shared"], tmp_path))
    with pytest.raises(UpnextError, match="By.npy: .* bytes, its header"):
        check_servable(bundle)


def test_an_absolute_array_name_is_refused(good, tmp_path):
    bundle = copy(good["shared"], tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["arrays"]["/etc/hostname"] = {"shape": [1], "dtype": "float32"}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UpnextError, match="not a plain file name"):
        check_servable(bundle)


def test_negative_similarities_are_refused_for_the_blend(good, tmp_path):
    bundle = copy(good["shared"], tmp_path)
    set_row(bundle / "itemknn", "similarities", 4, -1.0)
    with pytest.raises(UpnextError, match="'similarities' must be finite numbers >= 0"):
        check_servable(bundle)


def test_the_blend_weights_match_the_neighbours(good):
    eng = check_servable(good["shared"])
    _, neighbours = load_fallbacks(eng)
    weights = load_blend(eng)
    assert weights.shape == neighbours.shape and np.allclose(weights, 0.5)      # two neighbours, equal similarity
