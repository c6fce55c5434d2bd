"""Device selection: cpu always, auto falls back to the CPU, cuda is refused with the reason when it cannot run."""
import numpy as np
import pytest

from backend.errors import UpnextError
from backend.gru4rec.device import cuda_unavailable, resolve_device
from backend.gru4rec.params import Hyperparameters
from backend.gru4rec.trainer import train
from backend.session_data import SessionData


def _no_gpu() -> bool:
    return cuda_unavailable("fast") is not None


def test_cpu_is_always_cpu_and_bad_names_are_refused():
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(UpnextError, match="one of auto, cpu, cuda"):
        resolve_device("gpu")


@pytest.mark.skipif(not _no_gpu(), reason="this machine can train on a GPU")
def test_without_a_gpu_auto_picks_the_cpu_and_cuda_says_why():
    assert resolve_device("auto") == "cpu"
    assert resolve_device("auto", "reference") == "cpu"
    with pytest.raises(UpnextError, match="--device cuda: torch .* finds no CUDA GPU.*use --device cpu"):
        resolve_device("cuda")
    data = SessionData.from_sessions([["a", "b", "c"], ["b", "c"]])
    with pytest.raises(UpnextError, match="finds no CUDA GPU"):
        train(data, Hyperparameters(layers=(4,), batch_size=2, n_sample=2, n_epochs=1), device="cuda")


def test_cpu_training_records_its_device():
    data = SessionData.from_sessions([["a", "b", "c"], ["b", "c"], ["c", "a", "b"]])
    result = train(data, Hyperparameters(layers=(4,), batch_size=2, n_sample=2, n_epochs=1), device="auto",
                   threads=1)
    if _no_gpu():
        assert result.device == "cpu"
    assert result.steps_per_epoch == 3 and np.isfinite(result.epoch_loss).all()


def test_without_torch_installed_auto_trains_on_the_cpu_and_cuda_says_what_to_install(monkeypatch):
    """torch is the `upnext[train]` extra (issue 16): a serving-only install must still train on the CPU."""
    import sys
    monkeypatch.setitem(sys.modules, "torch", None)          # `import torch` raises ImportError, as when absent
    assert resolve_device("auto") == "cpu"
    with pytest.raises(UpnextError, match=r"torch is not installed.*upnext\[train\]"):
        resolve_device("cuda")
