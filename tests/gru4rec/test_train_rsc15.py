"""A short real training run: the issue's fidelity setting on the rsc15 100k-click sample."""
import numpy as np
import pytest

from backend.gru4rec.data import align_to_items, read_sessions
from backend.gru4rec.evaluation import evaluate_gru4rec
from backend.gru4rec.params import parse_params
from backend.gru4rec.trainer import train
from tests.conftest import shared_data

FIDELITY = ("loss=cross-entropy,constrained_embedding=True,layers=100,batch_size=32,dropout_p_embed=0.1,"
            "dropout_p_hidden=0.0,learning_rate=0.1,momentum=0.0,n_sample=2048,sample_alpha=0.75,logq=1.0,"
            "n_epochs=2")


@pytest.mark.slow
def test_rsc15_reaches_the_published_quality():
    folder = "rsc15-100k-sessionrec"
    train_data = read_sessions(shared_data(folder, "yoochoose-clicks-100k_train_full.txt"))
    test_data = align_to_items(read_sessions(shared_data(folder, "yoochoose-clicks-100k_test.txt")),
                               train_data.item_ids)
    seen = []
    result = train(train_data, parse_params(FIDELITY), progress=seen.append, progress_every=0.0)
    assert result.pairs_per_epoch == train_data.n_events - train_data.n_sessions     # nothing dropped
    assert result.epoch_loss[1] < result.epoch_loss[0]
    assert seen[-1].epoch == 2 and seen[-1].pairs_done == result.pairs_per_epoch
    metrics = evaluate_gru4rec(result.weights, test_data)
    assert metrics["predictions"] == 10_152
    assert metrics["recall@20"] >= 0.6, metrics
    assert metrics["mrr@20"] >= 0.3, metrics
    assert np.isfinite(result.weights.Wy).all()
