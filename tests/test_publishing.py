"""Publishing copies a bundle into the server's folder, hashed and checked; servers verify every file before
mapping it (issue 13, finding 4)."""
import hashlib
import logging
import os
import shutil
import stat

import numpy as np
import pytest

from backend.errors import UpnextError
from backend.publishing import publish_artifact, store_bundle
from backend.serving.registry import ModelRegistry
from backend.store.db import make_engine
from backend.store.sites import create_site
from backend.store.trained_models import live_models, promote, register_model
from tests.kernels.random_model import save_random_gru4rec
from tests.support.bundles import add_itemknn, huge_header, out_of_range_neighbours

MiB = 1 << 20
N = 80


@pytest.fixture
def store(sqlite_url):
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def bundle(tmp_path):
    """The operator's folder: a bundle with an item-kNN fallback, and a file serving never reads."""
    path = add_itemknn(save_random_gru4rec(tmp_path / "operator" / "m", N, [8], seed=4))
    (path / "notes.txt").write_text("trained on Tuesday")
    return path


def answer(registry, site_id):
    live = registry.get(site_id)
    return live.engine.top_k(live.engine.state_from_history([1, 2, 3]), 10)[0].tolist()


def test_publishing_stores_a_read_only_content_addressed_copy(store, bundle, tmp_path):
    site_id = create_site(store, "shop", []).site_id
    model_id = publish_artifact(store, site_id, bundle, model_dir=tmp_path / "models")
    record = live_models(store)[site_id]
    stored = tmp_path / "models" / os.path.basename(record.path)
    assert record.id == model_id and os.path.samefile(record.path, stored)
    sums = (stored / "SHA256SUMS").read_bytes()
    assert stored.name == hashlib.sha256(sums).hexdigest()
    listed = dict(reversed(line.split("  ")) for line in sums.decode().splitlines())
    assert set(listed) == {"manifest.json", "Wy.npy", "By.npy", "layer0.Wx.npy", "layer0.Wrz.npy", "layer0.Wh.npy",
                           "layer0.b.npy", "itemknn/manifest.json", "itemknn/neighbours.npy",
                           "itemknn/similarities.npy"}                    # notes.txt: not part of the bundle
    for name, digest in listed.items():
        assert hashlib.sha256((stored / name).read_bytes()).hexdigest() == digest
        assert not os.stat(stored / name).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert [p.name for p in (tmp_path / "models").iterdir()] == [stored.name]     # no temporary folder left
    assert store_bundle(bundle, tmp_path / "models") == stored                    # the same bundle: one folder


def test_editing_or_truncating_the_operators_folder_after_publishing_changes_nothing_served(store, bundle,
                                                                                            tmp_path):
    """The server mapped the operator's files: a truncated .npy killed it with SIGBUS, an edit went live
    unchecked."""
    site_id = create_site(store, "shop", []).site_id
    publish_artifact(store, site_id, bundle, model_dir=tmp_path / "models")
    registry = ModelRegistry(8 * MiB)
    registry.sync(store)
    before = answer(registry, site_id)
    with open(bundle / "Wy.npy", "r+b") as f:
        f.truncate(100)
    np.save(bundle / "By.npy", np.full(N, 3e38, np.float32))
    restarted = ModelRegistry(8 * MiB)
    assert restarted.sync(store) == [site_id]
    assert answer(restarted, site_id) == answer(registry, site_id) == before


@pytest.mark.parametrize("tamper", ["edit", "truncate", "delete", "add", "sums"])
def test_a_published_file_changed_afterwards_is_refused_and_the_live_model_stays(store, bundle, tmp_path, caplog,
                                                                                tamper):
    site_id = create_site(store, "shop", []).site_id
    first = publish_artifact(store, site_id, bundle, model_dir=tmp_path / "models")
    registry = ModelRegistry(8 * MiB)
    registry.sync(store)
    other = save_random_gru4rec(tmp_path / "operator" / "m2", N, [12], seed=5)
    second = publish_artifact(store, site_id, other, model_dir=tmp_path / "models")
    stored = live_models(store)[site_id].path
    target = os.path.join(stored, {"sums": "SHA256SUMS"}.get(tamper, "By.npy"))
    if tamper in ("edit", "truncate", "sums"):
        os.chmod(target, 0o644)
        with open(target, "r+b") as f:
            if tamper == "truncate":
                f.truncate(os.path.getsize(target) - 4)
            else:
                f.seek(-1, os.SEEK_END)
                f.write(b"\x7f")
    elif tamper == "delete":
        os.unlink(target)
    else:
        shutil.copy(target, os.path.join(stored, "extra.npy"))
    with caplog.at_level(logging.WARNING, logger="backend.serving.registry"):
        assert registry.sync(store) == []
    assert registry.get(site_id).model_id == first != second
    refused = [r for r in caplog.records if r.getMessage() == "model refused"]
    assert len(refused) == 1
    assert any(word in refused[0].reason for word in ("changed after publishing", "differ from those recorded"))


def test_a_model_registered_before_publishing_hashed_files_is_served_with_a_warning(store, bundle, caplog):
    site_id = create_site(store, "shop", []).site_id
    promote(store, site_id, register_model(store, site_id, bundle, "gru4rec"))
    registry = ModelRegistry(8 * MiB)
    with caplog.at_level(logging.WARNING, logger="backend.serving.registry"):
        assert registry.sync(store) == [site_id]
    assert [r.getMessage() for r in caplog.records] == [
        "model files unverified: registered before publishing recorded their hashes; publish it again to have them "
        "checked"]


@pytest.mark.parametrize("break_it, message", [
    (out_of_range_neighbours, "outside"),
    (huge_header, "bytes, its header"),
])
def test_a_bundle_that_cannot_be_served_is_refused_cleanly_and_nothing_is_kept(store, bundle, tmp_path, break_it,
                                                                               message):
    site_id = create_site(store, "shop", []).site_id
    break_it(bundle)
    with pytest.raises(UpnextError, match=message):
        publish_artifact(store, site_id, bundle, model_dir=tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == [] and live_models(store) == {}
