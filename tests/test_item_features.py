"""Item features from catalogue records (backend/item_features.py): tokens, vocabulary, CSR rows, artifact form."""
import json

import numpy as np
import pytest

from backend.item_features import FeatureConfig, ItemFeatures, ItemFeaturesError, read_feature_file, record_tokens


def _records():
    return [
        {"id": "a", "category": "Shoes > Running", "title": "Fast Runner 3", "price": 10.0,
         "attributes": {"brand": "Acme", "weight": 300, "colours": ["Red", "blue"], "vegan": True}},
        {"id": "b", "category": "shoes/running/trail", "title": "Trail runner", "price": 100.0,
         "attributes": {"brand": "acme", "weight": 250}},
        {"id": "c", "category": "Hats", "title": "Sun hat", "price": 1000.0, "attributes": {"brand": "Other"}},
    ]


def test_tokens_cover_category_prefixes_attributes_price_and_title():
    toks = record_tokens(_records()[0], np.array([np.log(50.0)]), 64)
    assert "cat:shoes" in toks and "cat:shoes>running" in toks
    assert {"attr:brand=acme", "attr:colours=red", "attr:colours=blue", "attr:vegan=true"} <= set(toks)
    assert "attr:weight#8" in toks                      # floor(log2(301)) = 8
    assert "price:0" in toks                            # below the only edge
    assert sum(t.startswith("title:") for t in toks) == 3   # fast, runner, 3
    assert len(toks) == len(set(toks))


def test_vocabulary_keeps_tokens_of_min_count_items_and_rows_are_unit_length():
    f = ItemFeatures.build(_records(), FeatureConfig(min_count=2, title_buckets=4096))
    assert "cat:shoes" in f.vocabulary and "cat:shoes>running" in f.vocabulary and "cat:hats" not in f.vocabulary
    assert "attr:brand=acme" in f.vocabulary           # case folded: both shoes
    X = f.dense()
    assert X.shape == (3, f.n_features)
    np.testing.assert_allclose(np.linalg.norm(X[:2], axis=1), 1.0, rtol=1e-6)
    f.check()


def test_encode_and_aligned_use_the_same_vocabulary():
    f = ItemFeatures.build(_records(), FeatureConfig(min_count=2))
    new = f.encode([{"id": "n", "category": "Shoes>Running>Road"}])
    assert [f.vocabulary[i] for i in new.indices] == ["cat:shoes", "cat:shoes>running"]
    al = f.aligned(["b", "zzz", "a"])
    np.testing.assert_array_equal(al.dense()[0], f.dense()[1])
    assert not al.dense()[1].any() and al.indptr[2] == al.indptr[1]


def test_artifact_round_trip_and_broken_arrays_refused():
    f = ItemFeatures.build(_records(), FeatureConfig(min_count=1))
    back = ItemFeatures.from_artifact({"item_features": f.manifest()}, f.arrays(), f.item_ids)
    np.testing.assert_array_equal(back.dense(), f.dense())
    assert all(a.dtype != object for a in f.arrays().values())
    bad = dict(f.arrays(), **{"features.indices": f.indices + 1000})
    with pytest.raises(ItemFeaturesError):
        ItemFeatures.from_artifact({"item_features": f.manifest()}, bad, f.item_ids)
    with pytest.raises(ItemFeaturesError):
        ItemFeatures.from_artifact({}, f.arrays(), f.item_ids)


def test_feature_file_reads_json_lines_and_names_a_bad_line(tmp_path):
    good = tmp_path / "items.jsonl"
    good.write_text("\n".join(json.dumps(r) for r in _records()) + "\n\n")
    assert [r["id"] for r in read_feature_file(good)] == ["a", "b", "c"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_records()[0]) + "\n{not json\n")
    with pytest.raises(ItemFeaturesError, match="bad.jsonl:2"):
        read_feature_file(bad)
    (tmp_path / "noid.jsonl").write_text('{"title": "x"}\n')
    with pytest.raises(ItemFeaturesError, match=":1: needs"):
        read_feature_file(tmp_path / "noid.jsonl")
    with pytest.raises(ItemFeaturesError, match="cannot read"):
        read_feature_file(tmp_path / "missing.jsonl")
