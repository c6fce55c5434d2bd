"""The served-setting training option mask_seen through the real CPU training loop; the GPU and reference
paths refuse it. The loss kernels themselves are checked in test_losses.py."""
import numpy as np
import pytest

from backend.errors import UpnextError
from backend.gru4rec.params import parse_params
from backend.gru4rec.trainer import train
from backend.session_data import SessionData

BASE = "layers=8,n_epochs=2,batch_size=4,n_sample=6,learning_rate=0.1"


def _sessions(seed, n, repeats: bool):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(2, 7))
        if repeats:
            out.append(rng.integers(0, 30, k).tolist())
        else:
            out.append(rng.choice(30, k, replace=False).tolist())
    return SessionData.from_sessions(out, item_ids=np.array([str(i) for i in range(30)], dtype=object))


def _weights(params, data, **kw):
    return {k: v.copy() for k, v in train(data, parse_params(params), threads=1, **kw).weights.arrays().items()}


@pytest.mark.parametrize("loss", ["cross-entropy", "bpr-max"])
def test_mask_seen_changes_training_only_where_sessions_have_seen_items_among_the_columns(loss):
    distinct = _sessions(1, 60, repeats=False)
    # one slot, no sampled negatives: a row's only column is its own target, never masked
    one = f"layers=8,n_epochs=1,batch_size=1,n_sample=0,loss={loss}"
    plain, masked = _weights(one, distinct), _weights(f"{one},mask_seen=true", distinct)
    for k in plain:
        np.testing.assert_allclose(masked[k], plain[k], rtol=1e-5, atol=1e-6, err_msg=k)
    repeats = _sessions(2, 60, repeats=True)
    plain, masked = _weights(f"{BASE},loss={loss}", repeats), _weights(f"{BASE},loss={loss},mask_seen=true", repeats)
    assert np.abs(masked["Wy"] - plain["Wy"]).max() > 1e-4


def test_the_gpu_and_reference_paths_refuse_the_options_and_auto_trains_on_the_cpu():
    data = _sessions(3, 20, repeats=True)
    with pytest.raises(UpnextError, match="fast CPU step only"):
        train(data, parse_params(f"{BASE},mask_seen=true"), device="cuda")
    with pytest.raises(UpnextError, match="fast CPU step only"):
        train(data, parse_params(f"{BASE},mask_seen=true"), impl="reference")
    assert train(data, parse_params(f"{BASE},mask_seen=true"), device="auto", threads=1).device == "cpu"
