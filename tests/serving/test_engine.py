"""The engine answers what the numpy reference kernels compute from the artifact's arrays."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from backend.artifact import ArtifactError, load_artifact, save_artifact
from backend.kernels import serving_reference as reference
from backend.serving.engine import GRU4RecEngine
from backend.settings import REPO_ROOT
from tests.kernels.random_model import random_gru4rec, weights
from tests.serving.conftest import MODELS, N_ITEMS


@pytest.fixture(params=sorted(MODELS), scope="module")
def loaded(request, artifacts):
    mode = request.param
    art = load_artifact(artifacts[mode], mmap=False)
    return GRU4RecEngine.load(artifacts[mode]), art.arrays, weights(art.arrays, MODELS[mode], mode)


def test_engine_describes_the_model(loaded):
    engine, arrays, _ = loaded
    assert engine.n_items == N_ITEMS and engine.state_size == sum(engine.layers)
    assert engine.index("item-5") == 5 and engine.index("nope") is None
    assert engine.indices(["item-3", "nope", "item-1"]).tolist() == [3, 1]
    assert engine.availability(["item-2", "nope"]).nonzero()[0].tolist() == [2]
    assert not engine._scoring.flags.writeable  # served straight from the read-only memory map


def test_states_agree_with_the_reference(loaded):
    engine, _, gru = loaded
    history = [4, 399, 0, 4]
    want = np.zeros(engine.state_size, np.float32)
    for i in history:
        reference.gru_step(want, i, *gru)
    np.testing.assert_allclose(engine.state_from_history(history), want, rtol=1e-5, atol=1e-6)
    before = engine.state_from_history(history[:-1])
    copy = before.copy()
    np.testing.assert_allclose(engine.advance(before, 4), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(before, copy)  # the engine never modifies a state it is given
    two = engine.advance_many(np.stack([before, np.zeros_like(before)]), [4, 7])
    np.testing.assert_allclose(two[0], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(two[1], engine.state_from_history([7]), rtol=1e-5, atol=1e-6)


def test_answers_agree_with_the_reference(loaded):
    engine, arrays, gru = loaded
    state = engine.state_from_history([10, 20, 30])
    h = state[engine.state_size - engine.layers[-1]:]
    available = np.arange(N_ITEMS) % 3 != 0
    exclude = [10, 20, 30, 31]
    ex = np.array(exclude, np.int64)
    want_i, want_s = reference.score_topk(h, arrays["Wy"], arrays["By"], 8, ex, available.astype(np.uint8))
    got_i, got_s = engine.top_k(state, 8, exclude, available)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_s, want_s, rtol=1e-5, atol=1e-5)
    many_i, _ = engine.top_k_many(np.stack([state, engine.zero_state()]), 8, [exclude, []], available)
    np.testing.assert_array_equal(many_i[0], want_i)
    np.testing.assert_array_equal(many_i[1], engine.top_k(engine.zero_state(), 8, (), available)[0])
    want_seq, _ = reference.rollout(state, 6, *gru, arrays["Wy"], arrays["By"], ex, available.astype(np.uint8))
    np.testing.assert_array_equal(engine.rollout(state, 6, exclude, available)[0], want_seq)


def test_float16_item_matrix(artifacts):
    engine = GRU4RecEngine.load(artifacts["shared"], item_matrix="float16")
    arrays = load_artifact(artifacts["shared"], mmap=False).arrays
    rounded = arrays["Wy"].astype(np.float16).astype(np.float32)
    for history in ([1], [5, 6, 7], [399, 398]):
        state = engine.state_from_history(history)
        want, _ = reference.score_topk(state, rounded, arrays["By"], 20, np.zeros(0, np.int64), np.zeros(0, np.uint8))
        np.testing.assert_array_equal(engine.top_k(state, 20)[0], want)
    assert engine._scoring.dtype == np.uint16 and engine._scoring.nbytes * 2 == arrays["Wy"].nbytes


def test_bad_arguments_are_refused(loaded):
    engine, _, _ = loaded
    state = engine.zero_state()
    with pytest.raises(ValueError, match="out of range"):
        engine.advance(state, N_ITEMS)
    with pytest.raises(ValueError, match="in \\[0"):
        engine.top_k(state, 5, exclude=[-1])
    with pytest.raises(ValueError, match="a state is"):
        engine.top_k(state[:-1], 5)
    with pytest.raises(ValueError, match="available"):
        engine.top_k(state, 5, available=np.ones(N_ITEMS - 1, bool))
    with pytest.raises(ValueError, match="k must be"):
        engine.top_k(state, 0)
    with pytest.raises(ValueError, match="one entry per state"):
        engine.top_k_many(np.stack([state, state]), 3, [[1]])
    two, nb, nw = np.stack([state, state]), np.array([1, 2]), np.array([0.5, 0.5], np.float32)
    with pytest.raises(ValueError, match="one entry per state"):
        engine.blend_top_k_many(two, 3, [nb, nb], [nw, nw], [0.5])
    with pytest.raises(ValueError, match="one weight per neighbour"):
        engine.blend_top_k_many(two, 3, [nb, np.array([N_ITEMS])], [nw, nw[:1]], [0.5, 0.5])
    with pytest.raises(ValueError, match="states must be"):
        engine.blend_top_k_many(state, 3, [nb], [nw], [0.5])
    with pytest.raises(ValueError, match="item_matrix"):
        GRU4RecEngine.load(engine.path, item_matrix="int8")


def _variant(tmp_path, change):
    manifest, arrays = random_gru4rec(50, [8], "shared")
    change(manifest, arrays)
    return save_artifact(tmp_path / "m", manifest, arrays)


@pytest.mark.parametrize("change, reason", [
    (lambda m, a: m.update(format="upnext-popular"), "expected 'upnext-gru4rec'"),
    (lambda m, a: m.update(layers=[]), "layers"),
    (lambda m, a: m.update(embedding="magic"), "embedding"),
    (lambda m, a: m.update(item_ids=["x"] * 50), "duplicates"),
    (lambda m, a: a.pop("layer0.Wh"), "'layer0.Wh' is missing"),
    (lambda m, a: a.update(Wy=a["Wy"][:, :4].copy()), "'Wy' is"),
    (lambda m, a: a.update(By=a["By"].astype(np.float64)), "'By' is"),
    (lambda m, a: m.update(item_ids=m["item_ids"][:-1]), "'Wy' is"),
    (lambda m, a: m.update(embedding="separate"), "needs a 2-d array E"),
], ids=["format", "layers", "embedding", "ids", "missing", "shape", "dtype", "n_items", "no-E"])
def test_artifacts_the_kernels_cannot_serve_are_refused(tmp_path, change, reason):
    with pytest.raises(ArtifactError, match=reason):
        GRU4RecEngine.load(_variant(tmp_path, change))


def test_nan_and_version_are_refused_by_the_loader(tmp_path):
    path = _variant(tmp_path, lambda m, a: a["layer0.b"].__setitem__(3, np.nan))
    with pytest.raises(ArtifactError, match="NaN"):
        GRU4RecEngine.load(path)
    path = _variant(tmp_path, lambda m, a: None)
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(ArtifactError, match="format version"):
        GRU4RecEngine.load(path)


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_serving_never_imports_torch():
    out = _run("""
        import sys
        import backend.serving, backend.serving.engine, backend.serving.state, backend.serving.registry
        print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))
    """)
    assert out.strip() == "[]"


@pytest.mark.parametrize("item_matrix", ["float32", "float16"])
def test_prewarm_compiles_every_kernel_the_engine_serves_with(artifacts, item_matrix):
    # in a fresh process, so that signatures compiled by other tests cannot hide a gap in prewarm()
    out = _run(f"""
        import numpy as np
        from backend.kernels import serving_cpu as cpu
        from backend.serving.engine import GRU4RecEngine
        kernels = [cpu.gru_step, cpu.gru_step_batch, cpu.score_topk, cpu.score_topk_batch, cpu.rollout]
        engine = GRU4RecEngine.load({str(artifacts['onehot'])!r}, item_matrix={item_matrix!r})
        engine.prewarm()
        before = [len(k.signatures) for k in kernels]
        state = engine.state_from_history([1, 2])
        state = engine.advance(state, 3)
        many = engine.advance_many(np.stack([state, state, state]), [1, 2, 3])
        engine.top_k(state, 20, [1, 2], np.ones(engine.n_items, bool))
        engine.top_k(state, 5)
        engine.top_k_many(many, 10, [[1], [], [2, 3]], np.ones(engine.n_items, np.uint8))
        engine.top_k_many(many, 10)
        engine.rollout(state, 8, [4])
        engine.rollout(state, 8, np.array([4], np.int32), np.ones(engine.n_items, bool))
        print(before, [len(k.signatures) for k in kernels])
    """)
    before, after = out.strip().split("] [")
    assert before + "]" == "[" + after and "0" not in before
