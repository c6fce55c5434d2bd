"""``upnext doctor``: exit 0 on a healthy set-up, 1 with the reason and what to do on a broken one (the database
down or hung, not migrated, an origin refused, the catalogue empty)."""
import json
import socket

import pytest

from backend.cli import main
from backend.clock import now_ms
from backend.store.db import make_engine, write_heartbeat
from backend.store.origins import OriginLog
from backend.store.sites import create_site
from tests.support.visits import seed_catalog
from tests.test_install_check import traffic


@pytest.fixture
def env(monkeypatch, tmp_path, db_url):
    monkeypatch.setenv("UPNEXT_DATABASE_URL", db_url)
    monkeypatch.setenv("UPNEXT_DATA_DIR", str(tmp_path / "var"))
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def working_site(engine):
    site = create_site(engine, "shop", ["https://shop.example"])
    seed_catalog(engine, site.site_id)
    traffic(engine, site.site_id, now_ms())
    log = OriginLog()
    log.note(site.site_id, "script", "https://shop.example")
    log.flush(engine)
    write_heartbeat(engine)                 # a server runs on this database
    return site


def run(capsys, *argv):
    capsys.readouterr()
    code = main(["doctor", *argv])
    return code, capsys.readouterr().out


def test_a_healthy_setup_exits_0(env, capsys):
    working_site(env)
    code, out = run(capsys, "--site", "shop")
    print(out)
    assert code == 0, out
    assert "FAIL" not in out and "WARN" not in out and out.rstrip().endswith("upnext doctor: green")
    for line in ("Database reachable", "Migrations at head", "Live models loadable", "Disk space",
                 "Views arrive", "No refused origins"):
        assert line in out
    code, out = run(capsys, "--site", "shop", "--json")
    assert code == 0 and json.loads(out)["status"] == "green"


def test_an_unknown_origin_is_named_and_exits_1(env, capsys):
    site = working_site(env)
    log = OriginLog()
    log.note(site.site_id, "refused", "https://www.shop.example")
    log.flush(env)
    code, out = run(capsys, "--site", "shop")
    print(out)
    assert code == 1
    assert "[FAIL] No refused origins" in out and "https://www.shop.example" in out and "add it on Sites" in out


def test_an_empty_catalogue_exits_1_and_says_how_to_import(env, capsys):
    create_site(env, "shop", ["https://shop.example"])
    code, out = run(capsys, "--site", "shop")
    print(out)
    assert code == 1 and "the catalogue is empty" in out and "upnext import-items" in out
    code, out = run(capsys, "--site", "nosuch")
    assert code == 1 and "no site named 'nosuch'" in out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_down_exits_1(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("UPNEXT_DATABASE_URL", f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/upnext")
    monkeypatch.setenv("UPNEXT_DATA_DIR", str(tmp_path / "var"))
    code, out = run(capsys, "--site", "shop")
    print(out)
    assert code == 1 and "[FAIL] Database reachable" in out and "start the database" in out


@pytest.mark.postgres
def test_a_hung_database_exits_1_within_the_connect_timeout(monkeypatch, tmp_path, capsys, postgres_server,
                                                            _postgres_migrated):
    monkeypatch.setenv("UPNEXT_DATABASE_URL", _postgres_migrated)
    monkeypatch.setenv("UPNEXT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("UPNEXT_DB_CONNECT_TIMEOUT_S", "1")
    monkeypatch.setenv("UPNEXT_DB_STATEMENT_TIMEOUT_S", "1")
    with postgres_server.paused():
        code, out = run(capsys)
    print(out)
    assert code == 1 and "[FAIL] Database reachable" in out


def test_a_database_not_migrated_exits_1(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("UPNEXT_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("UPNEXT_DATA_DIR", str(tmp_path / "var"))
    code, out = run(capsys)
    assert code == 1 and "run `upnext migrate`" in out


def test_a_live_model_that_cannot_load_is_red(env, capsys, tmp_path):
    from backend.store.trained_models import promote, register_model
    site = working_site(env)
    (tmp_path / "gone").mkdir()
    promote(env, site.site_id, register_model(env, site.site_id, tmp_path / "gone", "gru4rec"))
    code, out = run(capsys)
    assert code == 1 and "[FAIL] Live models loadable: 1 of 1 cannot be served" in out and "rollback" in out
