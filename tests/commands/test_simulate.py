"""``upnext simulate`` end to end at a small scale: a real server, trained models, an experiment, replayed
visitors, and a report from the database that agrees with what the visitors did."""
import json
import random

import pytest

from backend.blend import WEIGHTS
from backend.cli import main
from tests.conftest import shared_data

SMALL_GRU = "loss=cross-entropy,layers=32,batch_size=16,n_sample=64,sample_alpha=0.5,learning_rate=0.1,n_epochs=3"


def chain_sessions(count: int, seed: int, n_items: int = 60) -> list[list[str]]:
    """Sessions that mostly walk a ring of items (i -> i+1), sometimes jumping: a learnable next item."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        item = rng.randrange(n_items)
        session = [item]
        for _ in range(rng.randint(2, 7)):
            item = (item + 1) % n_items if rng.random() < 0.8 else rng.randrange(n_items)
            session.append(item)
        out.append([f"SKU-{i}" for i in session])
    return out


@pytest.fixture
def ring_files(tmp_path):
    train, test = tmp_path / "train.txt", tmp_path / "test.txt"
    train.write_text("\n".join(" ".join(s) for s in chain_sessions(1500, 1)) + "\n")
    test.write_text("\n".join(" ".join(s) for s in chain_sessions(150, 2)) + "\n")
    return train, test


def simulate(capsys, *args) -> dict:
    assert main(["simulate", *args, "--json", "--concurrency", "8"]) == 0
    return json.loads(capsys.readouterr().out)


def check_consistent(out: dict) -> None:
    """The report (from the database) counts what the visitors did: requests, clicks, sessions per arm."""
    client = out["simulation"]["client"]
    for name, arm in out["arms"].items():
        assert arm["requests"] == client["requests"].get(name, 0), name
        assert arm["sessions"] == client["sessions"].get(name, 0), name
        clicks = arm["clicks_per_1000"] * arm["requests"] / 1000
        assert clicks == pytest.approx(client["clicks"].get(name, 0)), name
        low, high = arm["clicks_per_1000_ci95"]
        assert low <= arm["clicks_per_1000"] <= high


def test_simulate_on_a_generated_ring(capsys, ring_files):
    train, test = ring_files
    out = simulate(capsys, "--train", str(train), "--test", str(test), "--arms", "popular,item-knn,gru4rec",
                   "--params", SMALL_GRU, "--n", "5")
    check_consistent(out)
    arms = out["arms"]
    assert list(arms) == ["popular", "item-knn", "gru4rec"] and out["control"] == "popular"
    assert sum(a["requests"] for a in arms.values()) == sum(len(s) - 1 for s in chain_sessions(150, 2))
    # the ring is learnable: both learnt arms click far more than the popular list, beyond the intervals
    for name in ("item-knn", "gru4rec"):
        assert arms[name]["clicks_per_1000_ci95"][0] > arms["popular"]["clicks_per_1000_ci95"][1], name
        assert arms[name]["clicks_uplift_ci95"][0] > 0
    assert out["simulation"]["visitor_model"]["play_p"] == 0.3


def test_simulate_rsc15_sample_paired_with_a_holdout(capsys):
    train = shared_data("rsc15-100k-sessionrec", "yoochoose-clicks-100k_train_tr.txt")
    test = shared_data("rsc15-100k-sessionrec", "yoochoose-clicks-100k_test.txt")
    out = simulate(capsys, "--train", str(train), "--test", str(test), "--arms", "popular,gru4rec,holdout",
                   "--params", SMALL_GRU, "--sessions", "200", "--paired")
    check_consistent(out)
    arms = out["arms"]
    assert out["simulation"]["sessions"] == 200 and out["simulation"]["paired"]
    # paired: every arm saw every sampled session
    assert {a["sessions"] for a in arms.values()} == {200} and len({a["requests"] for a in arms.values()}) == 1
    assert arms["holdout"]["requests"] > 0 and arms["holdout"]["clicks_per_1000"] == 0
    assert arms["holdout"]["kpis"]["impressions"][0] == 0           # nothing shown, nothing seen
    assert arms["gru4rec"]["clicks_per_1000"] > arms["popular"]["clicks_per_1000"]


def test_simulate_serves_the_blend_paired_with_item_to_item(capsys, ring_files):
    train, test = ring_files
    out = simulate(capsys, "--train", str(train), "--test", str(test), "--arms", "item_to_item,gru4rec_blend",
                   "--params", SMALL_GRU, "--n", "5", "--sessions", "100", "--paired")
    blend = out["simulation"]["training"]["blend"]      # no --blend-weight: chosen for the model, as runs do
    assert blend["chosen"] == "validation" and blend["weight"] in WEIGHTS
    check_consistent(out)
    arms = out["arms"]
    assert list(arms) == ["item_to_item", "gru4rec_blend"] and arms["gru4rec_blend"]["algorithm"] == "gru4rec_blend"
    assert arms["gru4rec_blend"]["requests"] == arms["item_to_item"]["requests"] > 0
    assert arms["gru4rec_blend"]["clicks_per_1000"] > 0


@pytest.mark.parametrize("args, message", [
    (["--arms", "popular,magic"], "unknown arm 'magic'"),
    (["--arms", "popular"], "at least two different arms"),
    (["--arms", "popular,popular"], "at least two different arms"),
    (["--arms", "popular,gru4rec", "--sessions", "0"], "--sessions must be at least 1"),
    (["--arms", "popular,gru4rec", "--n", "51"], "--n must be between 1 and 50"),
    (["--arms", "a=popular,b=popular", "--arm-settings", "b={"], "expected NAME=JSON object"),
    (["--arms", "a=popular,b=popular", "--arm-settings", 'c={"diversity": 0.3}'], "settings for 'c'"),
    (["--arms", "a=popular,b=popular", "--arm-settings", 'b={"diversity": 3}'], "arm b settings: diversity"),
    (["--arms", "a=popular,b=magic"], "unknown arm 'magic'"),
    (["--arms", "popular,gru4rec_blend", "--blend-weight", "-1"], "--blend-weight '-1': auto, or a number >= 0"),
    (["--arms", "popular,gru4rec_blend", "--blend-weight", "lots"], "--blend-weight 'lots'"),
    (["--arms", "popular,gru4rec_blend", "--blend-weight", "0.2", "--model", "m"], "a --model bundle keeps its own"),
])
def test_bad_arguments_are_refused(capsys, ring_files, args, message):
    train, test = ring_files
    assert main(["simulate", "--train", str(train), "--test", str(test), *args]) == 1
    assert message in capsys.readouterr().err


def test_missing_file_is_refused(capsys, tmp_path, ring_files):
    train, _ = ring_files
    assert main(["simulate", "--train", str(train), "--test", str(tmp_path / "nope.txt"),
                 "--arms", "popular,gru4rec"]) == 1
    assert "no such file" in capsys.readouterr().err


def test_arms_of_one_algorithm_with_different_settings():
    from backend.simulation.simulator import parse_arms
    arms = parse_arms("plain=gru4rec_next,diverse=gru4rec_next,popular", {"diverse": {"diversity": 0.3}})
    assert [(a.name, a.algorithm, dict(a.overrides)) for a in arms] == [
        ("plain", "gru4rec_next", {}), ("diverse", "gru4rec_next", {"diversity": 0.3}), ("popular", "popular", {})]
