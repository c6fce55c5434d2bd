import json
import subprocess
import sys

import pytest

from backend.cli import main
from backend.settings import REPO_ROOT


@pytest.fixture
def env(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("UPNEXT_DATABASE_URL", url)
    monkeypatch.setenv("UPNEXT_DATA_DIR", str(tmp_path / "var"))
    assert main(["migrate"]) == 0
    return tmp_path


def test_site_create_prints_keys_as_json_and_list(env, capsys):
    capsys.readouterr()
    assert main(["site", "create", "shop", "--origin", "https://shop.example"]) == 0
    keys = json.loads(capsys.readouterr().out)
    assert keys["publishable_key"].startswith("pk_") and keys["secret_key"].startswith("sk_")
    assert keys["allowed_origins"] == ["https://shop.example"]
    assert main(["site", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in listed] == ["shop"] and "secret_key" not in listed[0]


def test_site_require_origin_switch(env, capsys):
    assert main(["site", "create", "shop", "--origin", "https://shop.example"]) == 0
    assert main(["site", "create", "strict", "--require-origin"]) == 0
    capsys.readouterr()
    assert main(["site", "list", "--json"]) == 0
    assert [s["require_origin"] for s in json.loads(capsys.readouterr().out)] == [False, True]
    assert main(["site", "require-origin", "shop", "on"]) == 0
    assert json.loads(capsys.readouterr().out) == {"site": "shop", "require_origin": True}
    assert main(["site", "list"]) == 0
    assert capsys.readouterr().out.count("(Origin required)") == 2
    assert main(["site", "require-origin", "strict", "off"]) == 0
    assert main(["site", "require-origin", "nope", "on"]) == 1
    assert "no site named" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["site", "require-origin", "shop", "maybe"])


def test_errors_are_messages_not_tracebacks(env, capsys):
    main(["site", "create", "shop"])
    capsys.readouterr()
    assert main(["site", "create", "shop"]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["site", "create", "other", "--origin", "not-a-url"]) == 1
    assert main(["import-items", str(env / "missing.csv")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_import_items_reports_rejected_rows(env, capsys):
    main(["site", "create", "shop"])
    path = env / "cat.csv"
    path.write_text("id,title,price\nA,One,1\nB,Two,-1\n")
    assert main(["import-items", str(path)]) == 3
    out = capsys.readouterr().out
    assert "2 rows read, 1 stored, 1 rejected" in out and "line 3" in out
    report = json.loads((env / "cat.csv.rejected.json").read_text())
    assert report["rejected_rows"][0]["problems"][0]["field"] == "price"


def test_purge_and_bad_setting(env, capsys, monkeypatch):
    assert main(["purge", "--days", "30"]) == 0
    assert "deleted 0 events" in capsys.readouterr().out
    monkeypatch.setenv("UPNEXT_RETENTION_DAYS", "forever")
    assert main(["purge"]) == 1
    assert "UPNEXT_RETENTION_DAYS must be an integer" in capsys.readouterr().err


def test_python_dash_m_backend_runs_the_cli():
    r = subprocess.run([sys.executable, "-m", "backend", "--help"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "migrate" in r.stdout and "serve" in r.stdout
