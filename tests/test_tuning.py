"""backend/tuning.py: the validation split (the newest sessions), a stored study of real trials that resumes,
trials in parallel processes, and refusals."""
import multiprocessing

import numpy as np
import optuna
import pytest

from backend.gru4rec.data import read_sessions
from backend.gru4rec.params import parse_params
from backend.session_data import SessionData
from backend.store.db import make_engine
from backend.store.tuning_studies import get_study, study_trials
from backend.tuning import (SPACE, TuneError, hyperparameters, params_string, run_study, split_validation, start_values,
                            suggest)
from tests.support.sessions_tsv import write_sessions_tsv

FAST = "n_epochs=1,layers=16"           # held fixed: every trial trains in well under a second


@pytest.fixture
def data(tmp_path):
    return read_sessions(write_sessions_tsv(tmp_path / "train.tsv"))


def test_the_validation_split_is_the_newest_sessions_by_time(data):
    train, valid = split_validation(data, 0.25)
    assert valid.n_sessions == 60 and train.n_sessions == 180
    assert valid.start_times.min() > train.start_times.max()          # the file's rows were shuffled
    # the newest sessions of the file, whatever their position in it: session keys 180..239 started last
    assert np.all(valid.start_times >= 1_700_000_000 + 60 * 180)
    ids = lambda d, s: list(d.item_ids[d.session(s)])                  # noqa: E731
    assert [ids(train, s) for s in range(180)] == [ids(data, s) for s in range(180)]
    assert [ids(valid, s) for s in range(60)] == [ids(data, 180 + s) for s in range(60)]
    assert len(set(train.items.tolist())) == train.n_items             # only the items training holds


def test_suggested_values_are_always_valid_parameters():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    base = parse_params(FAST)
    for _ in range(200):
        trial = study.ask()
        values = suggest(trial, base)
        params = hyperparameters(base, values)
        assert params.n_epochs == 1 and params.layers == (16,)           # fixed ones are never tuned
        assert "n_epochs" not in values and "layers" not in values
        assert set(values) <= set(SPACE)
        assert parse_params(params_string(params)) == params             # the string gives back the parameters
        assert (params.bpreg == 0.0) if params.loss == "cross-entropy" else (params.logq == 0.0)
        study.tell(trial, 0.0)


def test_three_trials_finish_and_the_study_is_stored(engine, data):
    seen = []
    result = run_study(engine, "tiny", data, 3, jobs=1, fixed=FAST, source="tiny.tsv",
                       on_trial=lambda t, best, n, total: seen.append((t.number, n, total, best.value)))
    assert [s[:3] for s in seen] == [(0, 1, 3), (1, 2, 3), (2, 3, 3)]
    stored = study_trials(engine, get_study(engine, "tiny").id)
    assert [t.number for t in stored] == [0, 1, 2] and all(t.state == "complete" for t in stored)
    assert all(0.0 <= t.value <= 1.0 and t.value == t.metrics["served_recall@20"] for t in stored)
    assert {"served_mrr@20", "recall@20", "mrr@20"} <= set(stored[0].metrics)
    best = max(stored, key=lambda t: t.value)
    assert result.best.number == best.number and seen[-1][3] == best.value
    assert parse_params(result.best_params) == hyperparameters(parse_params(FAST), best.params)


@pytest.mark.parametrize("start", ["diginetica", "yoochoose,layers=100"])
def test_a_new_study_starts_at_the_given_parameters(engine, data, start):
    run_study(engine, f"start-{start}", data, 1, jobs=1, fixed="n_epochs=1,batch_size=16", start=start)
    [first] = study_trials(engine, get_study(engine, f"start-{start}").id)
    assert "n_epochs" not in first.params and "batch_size" not in first.params       # fixed ones stay fixed
    got = hyperparameters(parse_params("n_epochs=1,batch_size=16"), first.params)
    want = parse_params(start + ",n_epochs=1,batch_size=16")
    for name in ("loss", "final_act", "dropout_p_embed", "dropout_p_hidden", "learning_rate", "momentum",
                 "sample_alpha", "bpreg", "logq"):
        assert getattr(got, name) == getattr(want, name), name
    assert got.layers == ((96,) if "layers=100" in start else want.layers)     # snapped to the space's grid


def test_start_values_snap_into_the_space():
    values = start_values("rsc15,learning_rate=0.9,n_epochs=30", parse_params(""))
    assert values["layers"] == 96 and values["learning_rate"] == 0.25 and values["n_epochs"] == 10
    assert "bpreg" not in values and values["loss"] == "cross-entropy"


def test_a_stopped_study_resumes_where_it_stopped(engine, data):
    def stop_after_one(t, best, n, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(engine, "resumed", data, 3, jobs=1, fixed=FAST, on_trial=stop_after_one)
    assert len(study_trials(engine, get_study(engine, "resumed").id)) == 1
    result = run_study(engine, "resumed", data, 3, jobs=1, fixed=FAST)
    assert result.new_trials == 2 and [t.number for t in result.trials] == [0, 1, 2]
    again = run_study(engine, "resumed", data, 3, jobs=1, fixed=FAST)         # already complete: nothing runs
    assert again.new_trials == 0 and len(again.trials) == 3 and again.best.number == result.best.number


def test_trials_run_in_parallel_processes(sqlite_url, data):
    engine = make_engine(sqlite_url)
    try:
        result = run_study(engine, "parallel", data, 2, jobs=2, fixed=FAST)
    finally:
        engine.dispose()
    assert result.new_trials == 2 and all(t.state == "complete" for t in result.trials)


def test_an_interrupted_parallel_search_leaves_no_worker_behind(sqlite_url, data):
    """Ctrl-C, or a tuning run's cancel (its heartbeat interrupts the main thread), while other trials run."""
    engine = make_engine(sqlite_url)

    def interrupt(t, best, n, total):
        raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            run_study(engine, "interrupted", data, 4, jobs=2, fixed=FAST, on_trial=interrupt)
        assert multiprocessing.active_children() == []
        assert len(study_trials(engine, get_study(engine, "interrupted").id)) == 1
    finally:
        engine.dispose()


def test_a_resume_with_other_options_is_refused(engine, data):
    run_study(engine, "fixed-epochs", data, 1, jobs=1, fixed=FAST)
    with pytest.raises(TuneError, match="resume it with the same data and options"):
        run_study(engine, "fixed-epochs", data, 2, jobs=1, fixed="n_epochs=2,layers=16")


@pytest.mark.parametrize("kw, message", [
    ({"n_trials": 0}, "trials must be at least 1"),
    ({"jobs": 0}, "jobs must be at least 1"),
    ({"timeout": 0}, "timeout must be positive"),
    ({"fixed": "diginetica"}, "name=value pairs only"),
    ({"fixed": "layers=banana"}, "layers"),
    ({"valid_share": 1.0}, "validation share"),
])
def test_bad_requests_are_refused(engine, data, kw, message):
    args = {"n_trials": 1, **kw}
    n = args.pop("n_trials")
    with pytest.raises(ValueError, match=message):
        run_study(engine, "bad", data, n, **args)
    assert get_study(engine, "bad") is None


def test_too_few_sessions_are_refused():
    with pytest.raises(TuneError, match="too few"):
        split_validation(SessionData.from_sessions([["a", "b"]]))


def test_failing_trials_are_stored_as_failed_and_the_search_goes_on(engine, data):
    """learning_rate=1e30 held fixed: every trial diverges."""
    fixed = FAST + ",learning_rate=1e30"
    result = run_study(engine, "failing", data, 2, jobs=1, fixed=fixed)
    assert [t.state for t in result.trials] == ["failed", "failed"] and result.best is None
    # the loss turns NaN (or numpy's overflow warning, an error under the test settings, comes first)
    assert all(t.value is None and ("diverged" in t.error or "overflow" in t.error) for t in result.trials)
    again = run_study(engine, "failing", data, 3, jobs=1, fixed=fixed)     # failed trials replay too
    assert again.new_trials == 1 and len(again.trials) == 3
