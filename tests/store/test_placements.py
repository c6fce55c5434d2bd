import pytest

from backend.store.placement_rules import rule_from_text
from backend.store.placements import (PlacementConfig, PlacementDirectory, PlacementError, config_from_json,
                                      delete_placement, list_placements, save_placement)
from backend.store.sites import create_site


def test_save_list_update_delete(engine):
    site = create_site(engine, "shop", []).site_id
    save_placement(engine, site, PlacementConfig("product-page", algorithm="item_to_item", n=6, title="Similar"))
    save_placement(engine, site, PlacementConfig("home", page_kind="home", fallback=("popular",)))
    save_placement(engine, site, PlacementConfig("product-page", algorithm="gru4rec_next", n=4))
    got = {p.name: p for p in list_placements(engine, site)}
    assert got["product-page"].n == 4 and got["product-page"].algorithm == "gru4rec_next"
    assert got["home"].fallback == ("popular",) and got["home"].configured
    assert delete_placement(engine, site, "home") and not delete_placement(engine, site, "home")


@pytest.mark.parametrize("cfg", [
    PlacementConfig("Product Page"), PlacementConfig("x", algorithm="magic"), PlacementConfig("x", n=0),
    PlacementConfig("x", n=51), PlacementConfig("x", page_kind="blog"), PlacementConfig("x", title="t" * 201),
    PlacementConfig("x", fallback=("popular", "popular")), PlacementConfig("x", fallback=("random",)),
    PlacementConfig("x", diversity=1.5), PlacementConfig("x", diversity=-0.1), PlacementConfig("x", diversity=True),
    PlacementConfig("x", max_per_category=0), PlacementConfig("x", max_per_category=2.5),
    PlacementConfig("x", n=4, pinned=(("a", 5),)), PlacementConfig("x", pinned=(("a", 1), ("b", 1))),
    PlacementConfig("x", pinned=(("a", 1), ("a", 2))), PlacementConfig("x", pinned=(("", 1),)),
    PlacementConfig("x", blocked=("a\x00b",)), PlacementConfig("x", blocked=("a",), pinned=(("a", 1),)),
    PlacementConfig("x", rules=(rule_from_text("category in a"),) * 21),
])
def test_bad_settings_are_refused(engine, cfg):
    with pytest.raises(PlacementError):
        save_placement(engine, 1, cfg)


def test_directory_serves_defaults_for_unknown_names_and_sees_changes(engine):
    site = create_site(engine, "shop", []).site_id
    directory = PlacementDirectory(engine, refresh_s=3600)
    unknown = directory.get(site, "sidebar")
    assert not unknown.configured and unknown.algorithm == "gru4rec_next"
    assert unknown.fallback == ("item_to_item", "popular")
    save_placement(engine, site, PlacementConfig("sidebar", algorithm="popular"))
    assert directory.get(site, "sidebar").algorithm == "gru4rec_next"      # cached
    directory.invalidate(site)
    assert directory.get(site, "sidebar").algorithm == "popular"


def test_controls_are_saved_and_read_back(engine):
    site = create_site(engine, "shop", []).site_id
    rules = (rule_from_text("category not in gifts"), rule_from_text("price between 0.5x and 2x"),
             rule_from_text("attribute color = red"))
    save_placement(engine, site, PlacementConfig("p", n=6, diversity=0.3, max_per_category=2,
                                                 pinned=(("promo", 3), ("top", 1)), blocked=("bad", "bad", "worse"),
                                                 rules=rules))
    got = list_placements(engine, site)[0]
    assert (got.diversity, got.max_per_category, got.rules) == (0.3, 2, rules)
    assert got.pinned == (("top", 1), ("promo", 3)) and got.blocked == ("bad", "worse")
    assert config_from_json("p", got.as_json() | {"name": "p"}) == got


def test_json_settings_list_every_problem():
    with pytest.raises(PlacementError) as exc:
        config_from_json("p", {"n": 0, "diversity": 2, "colour": "red", "pinned": [{"item": "a"}],
                               "rules": [{"field": "price", "op": "between"}, {"field": "category", "op": "in",
                                                                               "values": ["x"]},
                                         {"field": "size"}], "name": "q"})
    fields = [f for f, _ in exc.value.problems]
    assert sorted(fields) == sorted(["n", "diversity", "colour", "pinned", "rules[0]", "rules[2]", "name"])
    assert "rules[0]: price between: give min, max or both" in str(exc.value)


def test_json_settings_keep_the_defaults_of_what_they_leave_out():
    cfg = config_from_json("p", {"algorithm": "popular", "rules": [{"field": "category", "op": "in",
                                                                    "values": ["shoes"]}]})
    assert cfg.n == 8 and cfg.algorithm == "popular" and cfg.rules == (rule_from_text("category in shoes"),)
    assert not config_from_json("p", {}).controlled and cfg.controlled
