"""``upnext placement list|set|delete``: placements as code, all or nothing."""
import json

import pytest

from backend.cli import main
from backend.store.placements import list_placements
from backend.store.sites import create_site

FILE = {"placements": [
    {"name": "product-page", "algorithm": "item_to_item", "n": 6, "diversity": 0.3, "max_per_category": 2,
     "pinned": [{"item": "SKU-9", "position": 1}], "blocked": ["SKU-1"],
     "rules": [{"field": "price", "op": "relative", "min": 0.5, "max": 2}]},
    {"name": "home", "page_kind": "home", "algorithm": "popular"}]}


@pytest.fixture
def site(engine, monkeypatch, db_url):
    monkeypatch.setenv("UPNEXT_DATABASE_URL", db_url)
    return create_site(engine, "shop", [])


def test_set_list_delete_round_trip(capsys, site, engine, tmp_path):
    path = tmp_path / "placements.json"
    path.write_text(json.dumps(FILE))
    assert main(["placement", "set", str(path)]) == 0
    assert "stored 2 placement(s) of shop: product-page, home" in capsys.readouterr().out
    assert main(["placement", "list", "--site", "shop"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in listed["placements"]] == ["home", "product-page"]
    assert listed["placements"][1]["rules"] == [{"field": "price", "op": "relative", "min": 0.5, "max": 2.0}]
    path.write_text(json.dumps(listed))                       # what list prints, set takes back unchanged
    assert main(["placement", "set", str(path)]) == 0
    capsys.readouterr()
    assert main(["placement", "list"]) == 0 and json.loads(capsys.readouterr().out) == listed
    assert main(["placement", "delete", "home"]) == 0
    assert [c.name for c in list_placements(engine, site.site_id)] == ["product-page"]
    assert main(["placement", "delete", "home"]) == 1
    assert "no placement 'home'" in capsys.readouterr().err


def test_set_lists_every_problem_and_stores_nothing(capsys, site, engine, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"name": "a", "diversity": 3}, {"algorithm": "popular"},
                                {"name": "b", "rules": [{"field": "price", "op": "between"}]},
                                {"name": "c"}, {"name": "c"}]))
    assert main(["placement", "set", str(path)]) == 1
    err = capsys.readouterr().err
    assert "nothing was stored" in err
    for line in ("placement 'a': diversity: a number from 0", "placement #2: name: required",
                 "placement 'b': rules[0]: price between: give min, max or both", "placement 'c': named twice"):
        assert line in err
    assert list_placements(engine, site.site_id) == []
    path.write_text("{not json")
    assert main(["placement", "set", str(path)]) == 1 and "not JSON" in capsys.readouterr().err
