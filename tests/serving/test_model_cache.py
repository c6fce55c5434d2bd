"""Models travel through the store (issue 16, part 1): a host that never saw a model's files fetches them from the
database, verified, when the model becomes live, and drops the ones no longer live."""
import os

import numpy as np
import pytest

from backend.artifact import ArtifactError
from backend.publishing import publish_artifact
from backend.serving.model_cache import ModelCache
from backend.serving.registry import ModelRegistry
from backend.store.blobs import DatabaseBlobs
from backend.store.db import make_engine
from backend.store.sites import create_site
from backend.store.trained_models import list_models, live_models, register_model
from tests.kernels.random_model import save_random_gru4rec
from tests.support.bundles import add_itemknn

N = 60


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def publish(engine, site_id, tmp_path, seed, host="a"):
    src = add_itemknn(save_random_gru4rec(tmp_path / "operator" / f"m{seed}", N, [8], seed=seed))
    return publish_artifact(engine, site_id, src, model_dir=tmp_path / host / "models")


def test_a_model_published_on_one_host_is_served_by_another_that_shares_only_the_database(engine, tmp_path):
    site_id = create_site(engine, "shop", []).site_id
    model_id = publish(engine, site_id, tmp_path, seed=1, host="a")
    record = live_models(engine)[site_id]
    assert record.id == model_id and record.sha256 == os.path.basename(record.path)
    cache_b = ModelCache(tmp_path / "b" / "models", DatabaseBlobs(engine))
    registry = ModelRegistry(1 << 20, locate=cache_b.local)
    assert registry.sync(engine) == [site_id]
    served = registry.get(site_id)
    assert served.model_id == model_id and str(served.engine.path) == str(tmp_path / "b" / "models" / record.sha256)
    a_side = ModelRegistry(1 << 20)                                    # host a serves from where it published
    a_side.sync(engine)
    answers = [reg.get(site_id).engine.top_k(reg.get(site_id).engine.state_from_history([1, 2, 3]), 10)[0]
               for reg in (registry, a_side)]
    np.testing.assert_array_equal(*answers)
    for name in ("Wy.npy", "itemknn/neighbours.npy", "SHA256SUMS"):
        assert (tmp_path / "b" / "models" / record.sha256 / name).read_bytes() == \
            (tmp_path / "a" / "models" / record.sha256 / name).read_bytes()
    assert [p.name for p in (tmp_path / "b" / "models").iterdir()] == [record.sha256]   # no temporary folder


def test_a_damaged_cached_copy_is_fetched_again(engine, tmp_path):
    site_id = create_site(engine, "shop", []).site_id
    publish(engine, site_id, tmp_path, seed=2)
    record = live_models(engine)[site_id]
    cache = ModelCache(tmp_path / "b" / "models", DatabaseBlobs(engine))
    folder = cache.local(record)
    wy = folder / "Wy.npy"
    os.chmod(wy, 0o644)
    wy.write_bytes(wy.read_bytes()[:-8])                                 # truncated behind the server's back
    assert cache.local(record) == folder
    assert wy.read_bytes() == (tmp_path / "a" / "models" / record.sha256 / "Wy.npy").read_bytes()


def test_a_model_whose_files_are_not_in_the_store_is_refused_and_the_live_one_stays(engine, tmp_path):
    site_id = create_site(engine, "shop", []).site_id
    first = publish(engine, site_id, tmp_path, seed=3)
    cache = ModelCache(tmp_path / "b" / "models", DatabaseBlobs(engine))
    registry = ModelRegistry(1 << 20, locate=cache.local)
    registry.sync(engine)
    publish(engine, site_id, tmp_path, seed=4)
    second = live_models(engine)[site_id]
    from sqlalchemy import text
    with engine.begin() as conn:                       # the list of files is there, one file is not
        conn.execute(text("DELETE FROM blob_chunks WHERE sha256 <> :s"), {"s": second.sha256})
        conn.execute(text("DELETE FROM blobs WHERE sha256 <> :s"), {"s": second.sha256})
    with pytest.raises(ArtifactError, match="cannot be fetched"):
        ModelCache(tmp_path / "c" / "models", DatabaseBlobs(engine)).local(second)
    assert registry.sync(engine) == [] and registry.get(site_id).model_id == first
    assert not any(p.name.startswith(".fetching") for p in (tmp_path / "b" / "models").iterdir())


def test_prune_removes_cached_models_no_longer_live_but_never_the_only_copy(engine, tmp_path):
    site_id = create_site(engine, "shop", []).site_id
    publish(engine, site_id, tmp_path, seed=5)
    old = live_models(engine)[site_id]
    publish(engine, site_id, tmp_path, seed=6)
    new = live_models(engine)[site_id]
    legacy = save_random_gru4rec(tmp_path / "a" / "models" / ("f" * 64), N, [8], seed=7)   # not in the store
    register_model(engine, site_id, tmp_path / "elsewhere", "gru4rec")
    cache = ModelCache(tmp_path / "a" / "models", DatabaseBlobs(engine), grace_s=3600)
    assert cache.prune({new.sha256}) == []                          # all touched within the grace period
    cache.grace_s = 0
    assert cache.prune({new.sha256}) == [old.sha256]
    assert sorted(p.name for p in (tmp_path / "a" / "models").iterdir()) == sorted([new.sha256, legacy.name])
    assert cache.local(old) == tmp_path / "a" / "models" / old.sha256      # a rollback fetches it back
    assert {m.sha256 for m in list_models(engine, site_id)} >= {old.sha256, new.sha256}
