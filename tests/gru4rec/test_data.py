"""Readers of the GRU4Rec TSV layout and the one-session-per-line layout; aligning test data to a model."""
import numpy as np
import pytest

from backend.gru4rec.data import DataError, align_to_items, read_sessions
from tests.conftest import shared_data


def _sessions(data):
    return [[data.item_ids[i] for i in data.session(s)] for s in range(data.n_sessions)]


def test_tsv_orders_sessions_by_first_event_and_events_by_time(tmp_path):
    path = tmp_path / "events.tsv"
    path.write_text("ItemId\tSessionId\tTime\n"          # any column order
                    "a\t9\t100.0\n"
                    "b\t9\t50.0\n"                       # earlier than the row above: goes first
                    "c\t10\t60.0\n"
                    "d\t2\t70.0\n"
                    "a\t10\t10.0\n"
                    "e\t2\t70.0\n")                      # same time: file order
    data = read_sessions(path)
    assert _sessions(data) == [["a", "c"], ["b", "a"], ["d", "e"]]
    assert data.start_times.tolist() == [10.0, 50.0, 70.0]
    assert list(data.item_ids) == ["a", "c", "b", "d", "e"]   # indices by first appearance


def test_one_session_per_line(tmp_path):
    path = tmp_path / "train_sessions.txt"
    path.write_text("5 7 5\n\n12 7\n3\n")
    data = read_sessions(path)
    assert _sessions(data) == [["5", "7", "5"], ["12", "7"], ["3"]]
    assert np.isnan(data.start_times).all() and data.time_range() is None


@pytest.mark.parametrize("content,message", [
    ("SessionId\tItemId\n1\t2\n", "missing Time"),
    ("SessionId\tItemId\tTime\n1\t2\tnoon\n", "must hold numbers"),
    ("SessionId\tItemId\tTime\n1\t2\n", "line 2 has 2 columns"),
    ("", "no sessions"),
])
def test_bad_files_are_refused_with_a_reason(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_sessions(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_sessions(tmp_path / "nope.tsv")


def test_align_drops_unknown_items_and_keeps_the_rest_of_the_session(tmp_path):
    path = tmp_path / "test.txt"
    path.write_text("a x b\nx\nb a\n")
    test = align_to_items(read_sessions(path), ["b", "a", "c"])
    assert [test.session(s).tolist() for s in range(test.n_sessions)] == [[1, 0], [], [0, 1]]
    assert list(test.item_ids) == ["b", "a", "c"]


def test_rsc15_sample_reads_as_documented():
    data = read_sessions(shared_data("rsc15-100k-sessionrec", "yoochoose-clicks-100k_train_full.txt"))
    assert (data.n_events, data.n_sessions, data.n_items) == (70_278, 17_794, 2_933)
    assert (np.diff(data.start_times) >= 0).all()
