"""The session simulator: every placement's answer for a pretend visit, its fallback reason and what the
filters removed; nothing is stored."""
from urllib.parse import quote

from sqlalchemy import func, select

from backend.publishing import publish_artifact
from backend.store.items import clean_item, upsert_items
from backend.store.placements import PlacementConfig, save_placement
from backend.store.tables import Event, ServedList
from tests.kernels.random_model import save_random_gru4rec

N = 30


def _site_with_model(engine, shop, tmp_path, svc):
    with engine.begin() as conn:
        upsert_items(conn, shop.site_id, [clean_item({
            "id": f"item-{i}", "title": f"<i>Item</i> {i}", "url": f"/p/{i}", "category": "odd" if i % 2 else "even",
            "available": i != 3}) for i in range(N)])
    save_placement(engine, shop.site_id, PlacementConfig("next", algorithm="gru4rec_next", n=5))
    save_placement(engine, shop.site_id, PlacementConfig("same-kind", algorithm="item_to_item", n=4,
                                                         same_category=True))
    publish_artifact(engine, shop.site_id, save_random_gru4rec(tmp_path / "m", N, [8], seed=2),
                     model_dir=tmp_path / "models")
    svc.models.sync(engine)
    svc.catalog.refresh()


def test_a_cold_visit_falls_back_and_says_why(admin, shop, engine, tmp_path, svc):
    _site_with_model(engine, shop, tmp_path, svc)
    html = admin.get(f"/admin/sites/{shop.site_id}/simulator").text
    assert html.count("fallback: cold_session") == 2
    assert "Filters removed: unavailable 1" in html
    assert "&lt;i&gt;Item&lt;/i&gt;" in html and "<i>Item</i>" not in html


def test_clicks_build_the_visit_and_placements_answer_for_it(admin, shop, engine, tmp_path, svc):
    _site_with_model(engine, shop, tmp_path, svc)
    base = f"/admin/sites/{shop.site_id}/simulator"
    html = admin.get(base + "?h=item-4&h=item-7").text
    assert '<ol class="visit"><li><code>item-4</code>' in html
    next_answer = html.split('data-placement="next"')[1].split("</section>")[0]
    assert "no fallback" in next_answer
    assert "item-4</code>" not in next_answer and "item-7</code>" not in next_answer      # exclude seen
    same = html.split('data-placement="same-kind"')[1].split("</section>")[0]
    assert "other_category 15" in same                       # the page item (item-7) is odd: evens removed
    assert f'href="{base}?h=item-4&amp;h=item-7&amp;h=item-' in html                       # a click adds a step
    assert f'href="{base}?h=item-4"' in html                                               # back one step
    unknown = admin.get(base + "?h=" + quote("not-in-the-model")).text
    assert "fallback: unknown_item" in unknown and "(not in the catalogue)" in unknown
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ServedList)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(Event)).scalar() == 0


def test_without_a_model_the_catalogue_answers(admin, shop, engine, svc):
    with engine.begin() as conn:
        upsert_items(conn, shop.site_id, [clean_item({"id": "only", "title": "Only one", "url": "/p/only"})])
    svc.catalog.refresh()
    html = admin.get(f"/admin/sites/{shop.site_id}/simulator").text
    assert "No live model" in html and "fallback: no_model" in html and "product-page" in html


def test_each_answer_says_which_control_removed_or_moved_which_item(admin, shop, engine, tmp_path, svc):
    from backend.store.placement_rules import rule_from_text
    _site_with_model(engine, shop, tmp_path, svc)
    save_placement(engine, shop.site_id, PlacementConfig("shaped", algorithm="popular", n=5, blocked=("item-0",),
                                                         pinned=(("item-20", 1),),
                                                         rules=(rule_from_text("category in odd"),)))
    html = admin.get(f"/admin/sites/{shop.site_id}/simulator").text
    shaped = html.split('data-placement="shaped"')[1].split("</section>")[0]
    assert "<code>item-0</code> removed by blocked" in shaped
    assert "removed by rule 1: category in odd" in shaped
    assert "<code>item-20</code> pinned by pinned (– → 1)" in shaped
    plain = html.split('data-placement="next"')[1].split("</section>")[0]
    assert "data-steps" not in plain                               # a placement without controls: nothing to say
