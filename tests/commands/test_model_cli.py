"""`upnext train`, `upnext evaluate` and `upnext baseline` end to end on small files and on a store."""
import json
from pathlib import Path

import numpy as np
import pytest

from backend.artifact import load_artifact
from backend.baselines import build
from backend.blend import CONTEXTS, WEIGHTS
from backend.cli import main
from backend.gru4rec.data import align_to_items, read_sessions
from backend.gru4rec.evaluation import evaluate_gru4rec
from backend.gru4rec.ranking_metrics import metrics_from_ranks
from backend.gru4rec.weights import load_model
from backend.store.db import make_engine
from backend.store.sites import create_site
from backend.store.trained_models import live_models
from tests.kernels.random_model import save_random_gru4rec
from tests.support.bundles import add_itemknn, huge_header, out_of_range_neighbours
from tests.support.visits import insert_views

SMALL = "layers=8,batch_size=4,n_sample=16,n_epochs=2,learning_rate=0.1,loss=cross-entropy,logq=1.0"


def _sessions(seed, n):
    rng = np.random.default_rng(seed)
    popular = rng.zipf(1.4, 20_000) % 40
    out, k = [], 0
    for length in rng.integers(2, 7, n):
        out.append([f"item{i}" for i in popular[k:k + length]])
        k += length
    return out


@pytest.fixture
def files(tmp_path):
    train = tmp_path / "train.tsv"
    rows = ["SessionId\tItemId\tTime"]
    t = 1_700_000_000.0
    for s, items in enumerate(_sessions(0, 150)):
        for it in items:
            t += 7.5
            rows.append(f"{s}\t{it}\t{t}")
    train.write_text("\n".join(rows) + "\n")
    test = tmp_path / "test.txt"
    test.write_text("\n".join(" ".join(s) for s in _sessions(1, 30)) + "\nitem1 never-seen item2\n")
    return train, test


def test_train_writes_an_artifact_and_shows_progress(files, tmp_path, capsys):
    train, test = files
    out = tmp_path / "model"
    assert main(["train", "--data", str(train), "--params", SMALL, "--out", str(out), "--test", str(test)]) == 0
    captured = capsys.readouterr()
    assert "epoch 2/2" in captured.err and "loss=" in captured.err and "ev_s=" in captured.err
    assert "events/s in the training loop" in captured.out and "conservative" in captured.out
    m = load_artifact(out).manifest
    assert m["format"] == "upnext-gru4rec" and m["embedding"] == "shared" and m["layers"] == [8]
    assert m["params"]["batch_size"] == 4 and m["params"]["final_act"] == "linear"
    assert len(m["item_ids"]) == len(m["support"]) and sum(m["support"]) == m["data"]["events"]
    assert m["data"]["sessions"] == 150 and m["data"]["first_time"] < m["data"]["last_time"]
    assert 0 < m["metrics"]["recall@20"] <= 1 and m["metrics"]["ties"] == "conservative"
    assert m["training"]["events_per_second"] > 0 and len(m["training"]["epoch_loss"]) == 2

    capsys.readouterr()
    assert main(["evaluate", str(out), "--test", str(test), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["recall@20"] == pytest.approx(m["metrics"]["recall@20"])
    assert {"recall@1", "mrr@5", "recall@10", "mrr@20", "predictions"} <= metrics.keys()
    assert metrics["ties"] == "conservative" and metrics["model"] == "upnext-gru4rec"
    # the served setting beside it: the same predictions, ranked with the session's seen items left out
    weights, art = load_model(out)
    aligned = align_to_items(read_sessions(test), art.item_ids)
    served = evaluate_gru4rec(weights, aligned, served=True)
    assert metrics["served"]["recall@20"] == served["recall@20"] and metrics["served"]["mrr@20"] == served["mrr@20"]
    assert metrics["served"]["predictions"] == metrics["predictions"]
    assert m["metrics"]["served"]["recall@20"] == pytest.approx(served["recall@20"])
    capsys.readouterr()
    assert main(["evaluate", str(out), "--test", str(test)]) == 0
    text = capsys.readouterr().out
    assert "standard" in text and "served" in text and f"{served['recall@20']:.4f}" in text


def test_baseline_json_and_artifact(files, tmp_path, capsys):
    train, test = files
    out = tmp_path / "pop"
    assert main(["baseline", "popular", "--data", str(train), "--test", str(test), "--json", "--out", str(out)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["model"] == "upnext-popular" and 0 < first["recall@20"] <= 1
    assert main(["evaluate", str(out), "--test", str(test), "--json", "--first-target", "3"]) == 0
    later = json.loads(capsys.readouterr().out)
    assert later["predictions"] < first["predictions"]
    assert main(["baseline", "vsknn", "--data", str(train), "--test", str(test)]) == 0
    assert "Recall@N" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["popular", "itemknn", "vsknn"])
def test_baseline_and_evaluate_report_the_served_setting(files, tmp_path, capsys, name):
    train, test = files
    out = tmp_path / name
    assert main(["baseline", name, "--data", str(train), "--test", str(test), "--json", "--out", str(out)]) == 0
    got = json.loads(capsys.readouterr().out)
    data = read_sessions(train)
    model = build(name, data)
    want = metrics_from_ranks(model.ranks(align_to_items(read_sessions(test), data.item_ids), served=True))
    assert got["served"] == want and got["served"]["recall@20"] != got["recall@20"]
    assert main(["evaluate", str(out), "--test", str(test), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["served"] == want


def test_train_on_a_site_of_the_store(tmp_path, monkeypatch, sqlite_url, capsys):
    monkeypatch.setenv("UPNEXT_DATABASE_URL", sqlite_url)
    engine = make_engine(sqlite_url)
    site = create_site(engine, "shop", []).site_id
    insert_views(engine, site, _sessions(2, 60))
    out = tmp_path / "site-model"
    assert main(["train", "--site", "shop", "--params", SMALL, "--out", str(out)]) == 0
    data = load_artifact(out).manifest["data"]
    assert data["source"] == "site:shop" and data["sessions"] > 40 and data["first_time"] > 0


@pytest.mark.parametrize("break_it, message", [
    (None, None),
    (out_of_range_neighbours, "'neighbours' holds indices outside"),
    (huge_header, "bytes, its header ([100000, 100000] float32) needs"),
])
def test_model_publish_copies_the_bundle_or_refuses_it_with_one_line(tmp_path, monkeypatch, sqlite_url, capsys,
                                                                     break_it, message):
    """A header claiming 100000x100000 and out-of-range neighbours crashed `model publish` with a traceback."""
    monkeypatch.setenv("UPNEXT_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("UPNEXT_DATA_DIR", str(tmp_path / "var"))
    engine = make_engine(sqlite_url)
    create_site(engine, "shop", [])
    bundle = add_itemknn(save_random_gru4rec(tmp_path / "bundle", 30, [8], seed=1))
    if break_it:
        break_it(bundle)
    code = main(["model", "publish", str(bundle), "--site", "shop"])
    out, err = capsys.readouterr()
    if message is None:
        assert code == 0 and err == ""
        printed = json.loads(out)
        assert printed["live"] and printed["source"] == str(bundle.resolve())
        assert Path(printed["path"]).parent == (tmp_path / "var" / "models").resolve()
        assert live_models(engine)[1].path == printed["path"]
    else:
        assert code == 1 and out == "" and "Traceback" not in err
        assert err.startswith("upnext: error: the bundle cannot be served: ") and message in err
        assert err.count("\n") == 1 and live_models(engine) == {}
    engine.dispose()


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("args,message", [
    pytest.param(["--params", "rsc15", "--device", "cuda"], "finds no CUDA GPU",
                 marks=pytest.mark.skipif(_has_gpu(), reason="this machine has a GPU: cuda is a valid choice")),
    (["--params", "loss=top1"], "legacy"),
    (["--params", "layers=lots"], "not a valid"),
])
def test_train_refuses_bad_requests(files, tmp_path, capsys, args, message):
    train, _ = files
    assert main(["train", "--data", str(train), "--out", str(tmp_path / "m"), *args]) == 1
    assert message in capsys.readouterr().err


def test_missing_files_and_non_models(tmp_path, files, capsys):
    train, test = files
    assert main(["train", "--data", str(tmp_path / "nope.tsv"), "--params", SMALL, "--out", str(tmp_path / "m")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), "--test", str(test)]) == 1
    assert "not a model artifact" in capsys.readouterr().err


def test_train_chooses_the_blend_weight_and_evaluate_reports_the_blend(files, tmp_path, capsys):
    train, test = files
    out = tmp_path / "model"
    assert main(["train", "--data", str(train), "--params", SMALL, "--out", str(out), "--test", str(test),
                 "--blend-weight", "auto"]) == 0
    text = capsys.readouterr().out
    m = load_artifact(out).manifest
    w, k = m["blend"]["weight"], m["blend"]["context"]
    tried = {(v["weight"], v["context"]): v["served_recall@20"] for v in m["blend"]["validation"]}
    assert m["blend"]["chosen"] == "validation" and tried[(w, k)] == max(tried.values())
    assert set(tried) == {(w, c) for c in CONTEXTS for w in WEIGHTS}
    assert f"blend weight {w}, last {k} items (validation)" in text and "gru4rec_blend" in text
    assert m["metrics"]["blend"]["weight"] == w and 0 < m["metrics"]["blend"]["served"]["recall@20"] <= 1
    assert main(["evaluate", str(out), "--test", str(test), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["blend"]["weight"] == w
    assert metrics["blend"]["served"]["recall@20"] == pytest.approx(m["metrics"]["blend"]["served"]["recall@20"])
    assert metrics["blend"]["predictions"] == metrics["predictions"]
    # w = 0: softmax keeps GRU4Rec's order, so the blend scores what GRU4Rec alone scores
    assert main(["evaluate", str(out), "--test", str(test), "--json", "--blend-weight", "0"]) == 0
    zero = json.loads(capsys.readouterr().out)
    assert zero["blend"]["recall@20"] == pytest.approx(zero["recall@20"])
    assert zero["blend"]["served"]["mrr@20"] == pytest.approx(zero["served"]["mrr@20"])
    assert main(["evaluate", str(out), "--test", str(test)]) == 0
    assert "gru4rec_blend (GRU4Rec + " in capsys.readouterr().out
    # the last item alone, as bundles from before the context was chosen
    assert main(["evaluate", str(out), "--test", str(test), "--blend-context", "1", "--blend-weight", "0.5"]) == 0
    assert "gru4rec_blend (GRU4Rec + 0.5 x item-to-item)" in capsys.readouterr().out
    assert main(["evaluate", str(out), "--test", str(test), "--blend-context", "11"]) == 1
    assert "--blend-context must be between 1 and 10" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["-1", "lots", "nan"])
def test_a_bad_blend_weight_is_refused_before_training(files, tmp_path, capsys, bad):
    train, _ = files
    assert main(["train", "--data", str(train), "--params", SMALL, "--out", str(tmp_path / "m"),
                 "--blend-weight", bad]) == 1
    assert "--blend-weight" in capsys.readouterr().err and not (tmp_path / "m").exists()
