"""GRU4Rec with item features (params item_features, id_dropout): item vector = kept ID row + features @ Fy,
the fused step equal to the torch reference, cold items ranked by their features, the artifact round trip, and
item_features=False exactly as before."""
import numpy as np
import pytest

from backend.errors import UpnextError
from backend.gru4rec.evaluation import gru4rec_ranks
from backend.gru4rec.fast import FastStep
from backend.gru4rec.loop import plan_training
from backend.gru4rec.optimizer import OptimizerState
from backend.gru4rec.params import Hyperparameters, ParamsError, parse_params
from backend.gru4rec.reference_step import ReferenceStep
from backend.gru4rec.trainer import train
from backend.gru4rec.weights import gru_step, init_weights, load_model, save_model
from backend.item_features import FeatureConfig, ItemFeatures, with_catalogue_items
from backend.session_data import SessionData

N_CAT, PER_CAT = 6, 10


def _catalogue():
    return [{"id": f"i{c}_{k}", "category": f"Cat{c} > Sub{k % 2}", "title": f"thing{c} model {k}",
             "price": float(5 * (c + 1) + k), "attributes": {"brand": f"brand{c}"}}
            for c in range(N_CAT) for k in range(PER_CAT)]


def _sessions(rng, n=400, cold=frozenset()):
    out = []
    for _ in range(n):
        c = rng.integers(N_CAT)
        items = [f"i{c}_{k}" for k in rng.integers(0, PER_CAT, rng.integers(3, 7))]
        out.append([i for i in items if i not in cold] or [f"i{c}_0"])
    return out


def _params(**kw):
    base = dict(layers=(8,), batch_size=5, n_sample=7, learning_rate=0.2, sample_store_size=70,
                item_features=True, id_dropout=0.4)
    return Hyperparameters(**{**base, **kw})


def test_params_parse_check_and_stay_out_of_the_manifest_when_off():
    p = parse_params("item_features=true,id_dropout=0.25,feature_min_count=3,title_buckets=64")
    assert (p.item_features, p.id_dropout, p.feature_min_count, p.title_buckets) == (True, 0.25, 3, 64)
    assert "id_dropout" in p.as_dict()
    assert not {"item_features", "id_dropout", "feature_min_count", "title_buckets"} & set(
        Hyperparameters().as_dict())
    with pytest.raises(ParamsError, match="id_dropout"):
        parse_params("id_dropout=1.5")
    with pytest.raises(ParamsError, match="item_features"):
        parse_params("item_features=true,constrained_embedding=false,embedding=8")


def test_id_dropout_scaling_parses_and_stays_out_of_the_manifest_when_off():
    p = parse_params("item_features=true,id_dropout=0.75,id_dropout_scaling=train")
    assert (p.id_scale("train"), p.id_scale("serve")) == (4.0, 1.0)
    assert p.as_dict()["id_dropout_scaling"] == "train"
    serve = p.replace(id_dropout_scaling="serve")
    assert (serve.id_scale("train"), serve.id_scale("serve")) == (1.0, 0.25)
    assert p.replace(id_dropout=1.0).id_scale("train") == 1.0             # nothing is ever kept
    assert p.replace(item_features=False).id_scale("train") == 1.0        # no ID dropout without features
    off = parse_params("item_features=true,id_dropout=0.5")
    assert off.id_scale("train") == off.id_scale("serve") == 1.0 and "id_dropout_scaling" not in off.as_dict()
    with pytest.raises(ParamsError, match="id_dropout_scaling must be one of off, train, serve"):
        parse_params("item_features=true,id_dropout_scaling=yes")


@pytest.mark.parametrize("kw", [dict(momentum=0.0), dict(momentum=0.3, loss="bpr-max", bpreg=0.5,
                                                          dropout_p_embed=0.2),
                                dict(id_dropout_scaling="train"),
                                dict(id_dropout_scaling="train", momentum=0.3, loss="bpr-max", bpreg=0.5)])
def test_fast_step_with_features_matches_the_reference(kw):
    params = _params(**kw)
    feats = ItemFeatures.build(_catalogue(), FeatureConfig(min_count=2, title_buckets=32))
    n_items = N_CAT * PER_CAT
    w = init_weights(n_items, params.layers, "shared", 0, np.random.default_rng(3), feats)
    w.Wy[:] = np.random.default_rng(4).normal(0, 0.3, w.Wy.shape)      # a trained-looking ID part
    w_fast, o_fast = w.copy(), OptimizerState.zeros_for(w, params.momentum)
    w_ref, o_ref = w.copy(), OptimizerState.zeros_for(w, params.momentum)
    fast, ref = FastStep(w_fast, o_fast, params), ReferenceStep(w_ref, o_ref, params)
    rng = np.random.default_rng(5)
    for t, M in enumerate((5, 5, 3)):
        ins = rng.integers(0, n_items, M)
        ins[1] = ins[0]
        outs = rng.integers(0, n_items, M)
        samples = rng.integers(0, n_items, params.n_sample).astype(np.int32)
        src = np.arange(M, dtype=np.int32) if t else np.full(M, -1, np.int32)
        src[-1] = -1
        log_q = np.zeros(M + params.n_sample, np.float32)
        me = (rng.random((M, 8)) > 0.2).astype(np.float32) / 0.8 if params.dropout_p_embed else np.zeros((0, 0))
        me = me.astype(np.float32)
        lf = fast(ins, outs, samples, src, log_q, me, [np.zeros((0, 0), np.float32)])
        lr = ref(ins, outs, samples, src, log_q, me, [np.zeros((0, 0), np.float32)])
        assert lf == pytest.approx(lr, rel=1e-4)
    for name in ("Fy", "Wy", "By", "layer0.Wx"):
        np.testing.assert_allclose(w_fast.arrays()[name], w_ref.arrays()[name], rtol=1e-4, atol=1e-5)
    assert not np.allclose(w_fast.Fy, w.Fy)


def test_id_dropout_one_learns_no_id_part_and_cold_items_rank_by_features():
    rng = np.random.default_rng(0)
    cold = {f"i{c}_9" for c in range(N_CAT)}
    data = SessionData.from_sessions(_sessions(rng, cold=cold))
    assert not cold & set(data.item_ids)
    feats = ItemFeatures.build(_catalogue(), FeatureConfig(min_count=2, title_buckets=64))
    for dropout in (1.0, 0.5):
        p = _params(id_dropout=dropout, layers=(16,), batch_size=16, n_sample=32, sample_store_size=3200,
                    n_epochs=4, learning_rate=0.1)
        full = with_catalogue_items(data, [r["id"] for r in _catalogue()])
        assert cold <= set(full.item_ids) and (full.support()[-len(cold):] == 0).all()
        result = train(full, p, features=feats)
        w = result.weights
        if dropout == 1.0:
            assert not w.Wy.any()                         # never used, never updated: zero as initialised
        ids = list(full.item_ids)
        vec = w.item_vectors()
        hits = 0
        for c in range(N_CAT):
            state = gru_step(w.folded(), np.array([ids.index(f"i{c}_1")]), [np.zeros((1, 16), np.float32)])
            scores = state[-1][0] @ vec.T + w.By
            cold_scores = {i: scores[ids.index(i)] for i in cold}
            hits += max(cold_scores, key=cold_scores.get) == f"i{c}_9"
        assert hits >= N_CAT - 1, (dropout, hits)


def test_artifact_round_trip_keeps_vectors_and_features(tmp_path):
    data = SessionData.from_sessions(_sessions(np.random.default_rng(1), n=60))
    feats = ItemFeatures.build(_catalogue(), FeatureConfig(min_count=2, title_buckets=32))
    p = _params(n_epochs=1)
    result = train(data, p, features=feats)
    save_model(tmp_path / "m", result.weights, params=p.as_dict(), item_ids=data.item_ids,
               support=data.support(), data={})
    back, art = load_model(tmp_path / "m")
    np.testing.assert_allclose(back.Wy, result.weights.item_vectors(), rtol=1e-6)
    np.testing.assert_array_equal(back.item_vectors(), back.Wy)          # folded once, not twice
    np.testing.assert_array_equal(back.features.dense(), feats.aligned(data.item_ids).dense())
    assert art.manifest["item_features"]["vocabulary"] == feats.vocabulary
    ranks_a = gru4rec_ranks(result.weights.folded(), data)
    np.testing.assert_array_equal(gru4rec_ranks(back, data), ranks_a)


def test_without_item_features_nothing_changes():
    data = SessionData.from_sessions(_sessions(np.random.default_rng(2), n=40))
    feats = ItemFeatures.build(_catalogue())
    p = Hyperparameters(layers=(8,), batch_size=5, n_sample=7, sample_store_size=70, n_epochs=1)
    plan = plan_training(data, p, None, feats)
    assert plan.weights.Fy is None and "Fy" not in plan.weights.arrays()
    a = train(data, p)
    b = train(data, p, features=feats)
    assert a.epoch_loss == b.epoch_loss
    np.testing.assert_array_equal(a.weights.Wy, b.weights.Wy)


def test_item_features_refused_without_features():
    data = SessionData.from_sessions(_sessions(np.random.default_rng(3), n=20))
    with pytest.raises(UpnextError, match="needs item features"):
        train(data, _params())


def test_id_dropout_scaling_serve_scales_the_id_row_in_the_saved_item_vectors_only(tmp_path):
    data = SessionData.from_sessions(_sessions(np.random.default_rng(1), n=60))
    feats = ItemFeatures.build(_catalogue(), FeatureConfig(min_count=2, title_buckets=32))
    p = _params(n_epochs=1, id_dropout=0.25)
    plain = train(data, p, features=feats).weights
    scaled = train(data, p.replace(id_dropout_scaling="serve"), features=feats).weights
    np.testing.assert_array_equal(scaled.Wy, plain.Wy)                  # the same training
    np.testing.assert_array_equal(scaled.Fy, plain.Fy)
    assert plain.Wy.any() and scaled.id_scale == 0.75 and scaled.copy().id_scale == 0.75
    X = feats.aligned(data.item_ids).dense()
    np.testing.assert_allclose(scaled.item_vectors(), 0.75 * plain.Wy + X @ plain.Fy, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plain.item_vectors(), plain.Wy + X @ plain.Fy, rtol=1e-5, atol=1e-6)
    save_model(tmp_path / "m", scaled, params=p.replace(id_dropout_scaling="serve").as_dict(),
               item_ids=data.item_ids, support=data.support(), data={})
    back, art = load_model(tmp_path / "m")
    np.testing.assert_array_equal(back.Wy, scaled.item_vectors())         # served: scaled once
    np.testing.assert_array_equal(art["Wy_id"], scaled.Wy)                 # the ID part as trained
