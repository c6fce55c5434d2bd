"""Hyperparameters: names users of GRU4Rec know, parameter strings, presets (spec §7), refusals."""
import pytest

from backend.gru4rec.params import PRESETS, ParamsError, parse_params

FIDELITY = ("loss=cross-entropy,constrained_embedding=True,layers=100,batch_size=32,dropout_p_embed=0.1,"
            "dropout_p_hidden=0.0,learning_rate=0.1,momentum=0.0,n_sample=2048,sample_alpha=0.75,logq=1.0,"
            "n_epochs=2")


def test_full_parameter_string():
    p = parse_params(FIDELITY)
    assert p.layers == (100,) and p.batch_size == 32 and p.logq == 1.0 and p.n_epochs == 2
    assert p.embedding_mode == "shared" and p.elu_alpha == 0.0
    assert p.as_dict() == {**PRESETS["rsc15"].as_dict(), "n_epochs": 2}


def test_presets_follow_the_published_table():
    d = PRESETS["diginetica"]
    assert (d.loss, d.final_act, d.layers, d.batch_size, d.dropout_p_embed, d.dropout_p_hidden,
            d.learning_rate, d.momentum, d.sample_alpha, d.bpreg, d.logq, d.n_sample, d.n_epochs) == \
        ("bpr-max", "elu-1", (512,), 128, 0.5, 0.3, 0.05, 0.15, 0.3, 0.9, 0.0, 2048, 10)
    assert PRESETS["retailrocket"].elu_alpha == 0.5
    assert all(p.embedding_mode == "shared" for p in PRESETS.values())


def test_preset_with_overrides_and_list_layers():
    p = parse_params("diginetica,n_epochs=3,layers=64/32")
    assert p.n_epochs == 3 and p.layers == (64, 32) and p.loss == "bpr-max"


def test_embedding_size_means_separate_mode():
    assert parse_params("embedding=64").embedding_mode == "separate"
    assert parse_params("constrained_embedding=False").embedding_mode == "onehot"
    with pytest.raises(ParamsError, match="constrained_embedding=False"):
        parse_params("constrained_embedding=True,embedding=64")


@pytest.mark.parametrize("text,message", [
    ("loss=top1", "legacy"),
    ("loss=xe", "loss must be"),
    ("nonsense=1", "unknown parameter"),
    ("diginetika", "unknown preset"),
    ("batch_size=many", "not a valid int"),
    ("dropout_p_hidden=1.0", r"in \[0, 1\)"),
    ("final_act=relu", "final_act"),
    ("constrained_embedding=perhaps", "not a valid bool"),
    ("learning_rate=0", "> 0"),
])
def test_bad_values_are_refused_with_a_reason(text, message):
    with pytest.raises(ParamsError, match=message):
        parse_params(text)


def test_as_dict_spells_out_effective_values():
    d = parse_params("loss=bpr-max").as_dict()
    assert d["final_act"] == "elu-1" and d["layers"] == [100] and "_explicit" not in d


def test_served_training_options_parse_and_stay_out_of_the_record_when_off():
    from backend.gru4rec.params import ParamsError, parse_params
    p = parse_params("diginetica,mask_seen=true")
    assert p.mask_seen and p.served_training and p.as_dict()["mask_seen"] is True
    plain = parse_params("diginetica")
    assert not plain.served_training and "mask_seen" not in plain.as_dict()
    for bad in ("repeat_weight=0", "mask_seen=maybe"):          # repeat_weight: measured worse, dropped
        with pytest.raises(ParamsError):
            parse_params(bad)
