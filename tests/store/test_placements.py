import pytest

from backend.store.placements import (PlacementConfig, PlacementDirectory, PlacementError, delete_placement,
                                      list_placements, save_placement)
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
