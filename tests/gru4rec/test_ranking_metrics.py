"""Conservative ties and the Recall/MRR definitions of spec §6."""
import numpy as np
import pytest

from backend.gru4rec.ranking_metrics import conservative_ranks, format_table, metrics_from_ranks


def test_ties_count_against_the_target():
    scores = np.array([[0.5, 0.9, 0.5, 0.1, 0.5],      # target 0 ties with items 2 and 4, item 1 is above
                       [1.0, 1.0, 1.0, 1.0, 1.0],      # all equal: the worst rank
                       [0.0, 0.0, 3.0, 0.0, 0.0]], np.float32)
    ranks = np.zeros(3, np.int64)
    conservative_ranks(scores, np.array([0, 3, 2]), ranks)
    assert ranks.tolist() == [4, 5, 1]


def test_recall_and_mrr_are_micro_averages():
    m = metrics_from_ranks(np.array([1, 2, 5, 21, 10]), cutoffs=(1, 5, 20))
    assert m["recall@1"] == pytest.approx(1 / 5)
    assert m["recall@5"] == pytest.approx(3 / 5)
    assert m["recall@20"] == pytest.approx(4 / 5)
    assert m["mrr@5"] == pytest.approx((1 + 1 / 2 + 1 / 5) / 5)
    assert m["mrr@20"] == pytest.approx((1 + 1 / 2 + 1 / 5 + 1 / 10) / 5)
    assert m["predictions"] == 5 and m["ties"] == "conservative"


def test_table_names_the_tie_mode():
    text = format_table(metrics_from_ranks(np.array([1, 3])))
    assert "Recall@N" in text and "conservative" in text and "  20     1.0000     0.6667" in text
