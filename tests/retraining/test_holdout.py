import numpy as np

from backend.retraining.holdout import DAY_S, restrict_to_items, select_sessions, split_newest_day
from backend.session_data import SessionData


def _data(n_sessions: int, span_days: float) -> SessionData:
    sessions = [[f"i{(k + j) % 7}" for j in range(3)] for k in range(n_sessions)]
    times = np.linspace(0, span_days * DAY_S, n_sessions) + 1.7e9
    return SessionData.from_sessions(sessions, start_times=times)


def test_the_newest_day_is_held_out_and_training_keeps_only_its_items():
    data = _data(40, 4.0)
    split = split_newest_day(data)
    last = data.start_times.max()
    assert split.info["kind"] == "day"
    assert split.test.n_sessions == int((data.start_times >= last - DAY_S).sum()) == split.info["sessions"]
    assert split.train.n_sessions + split.test.n_sessions == data.n_sessions
    assert (split.train.start_times < last - DAY_S).all()
    assert split.test.n_events == split.info["events"]
    assert set(split.train.item_ids) == {data.item_ids[i] for i in split.train.items}
    # the test keeps the export's vocabulary and its events
    assert [list(split.test.item_ids[split.test.session(s)]) for s in range(split.test.n_sessions)] == \
        [list(data.item_ids[data.session(s)]) for s in range(data.n_sessions - split.test.n_sessions,
                                                             data.n_sessions)]


def test_less_than_a_day_and_a_bit_holds_out_the_newest_tenth():
    data = _data(50, 0.5)
    split = split_newest_day(data)
    assert split.info["kind"] == "newest_sessions"
    assert split.test.n_sessions == 5 and split.train.n_sessions == 45
    data = _data(3, 0.0)
    split = split_newest_day(data)
    assert (split.train.n_sessions, split.test.n_sessions) == (2, 1)


def test_restricting_to_items_drops_their_events_only():
    data = SessionData.from_sessions([["a", "b", "c"], ["c", "d"], ["e"]])
    kept = restrict_to_items(data, ["a", "c", "e"])
    assert [list(kept.item_ids[kept.session(s)]) for s in range(3)] == [["a", "c"], ["c"], ["e"]]
    assert kept.n_sessions == data.n_sessions


def test_select_sessions_without_reindexing_keeps_the_vocabulary():
    data = SessionData.from_sessions([["a", "b"], ["c", "d"]])
    only = select_sessions(data, np.array([False, True]), reindex=False)
    assert list(only.item_ids) == ["a", "b", "c", "d"] and list(only.items) == [2, 3]
    only = select_sessions(data, np.array([False, True]), reindex=True)
    assert list(only.item_ids) == ["c", "d"] and list(only.items) == [0, 1]
