import json

import pytest
from sqlalchemy import select

from backend.store import importer
from backend.store.importer import ImportFileError, import_items
from backend.store.sites import create_site
from backend.store.tables import Item


def _items(engine):
    with engine.connect() as conn:
        return {r.id: r for r in conn.execute(select(Item)).all()}


def test_csv_import_with_attributes_and_rejected_rows(engine, tmp_path):
    site = create_site(engine, "shop", [])
    path = tmp_path / "cat.csv"
    path.write_text("id,title,price,currency,available,attributes.color\n"
                    "A,Shoe,10,EUR,true,red\n"
                    "B,<b>Bold</b>,-3,EUR,true,\n"
                    ",No id,1,EUR,true,\n"
                    "C,Hat,2.5,,no,blue\n", encoding="utf-8")
    report = import_items(engine, site.site_id, path)
    assert (report.read, report.stored, len(report.rejected)) == (4, 2, 2)
    assert [r.line for r in report.rejected] == [3, 4]
    assert report.rejected[0].problems[0][0] == "price"
    items = _items(engine)
    assert items["A"].attributes == {"color": "red"} and items["C"].available is False
    assert json.loads(json.dumps(report.as_json()))["rejected"] == 2


def test_jsonl_import_upserts_and_reports_bad_json(engine, tmp_path):
    site = create_site(engine, "shop", [])
    path = tmp_path / "cat.jsonl"
    path.write_text('{"id": "A", "title": "one"}\n{not json}\n\n{"id": "A", "title": "two"}\n')
    report = import_items(engine, site.site_id, path)
    assert report.stored == 2 and len(report.rejected) == 1 and report.rejected[0].line == 2
    assert _items(engine)["A"].title == "two"


def test_unknown_csv_column_and_format_are_refused(engine, tmp_path):
    site = create_site(engine, "shop", [])
    bad = tmp_path / "cat.csv"
    bad.write_text("id,colour\nA,red\n")
    with pytest.raises(ImportFileError, match="colour"):
        import_items(engine, site.site_id, bad)
    with pytest.raises(ImportFileError, match="format"):
        import_items(engine, site.site_id, tmp_path / "cat.xlsx")


def test_a_crash_leaves_whole_batches_only(engine, tmp_path, monkeypatch):
    site = create_site(engine, "shop", [])
    monkeypatch.setattr(importer, "BATCH_ROWS", 10)
    path = tmp_path / "cat.jsonl"
    path.write_text("".join(json.dumps({"id": f"I{i}"}) + "\n" for i in range(35)))
    calls = {"n": 0}
    real = importer.upsert_items

    def crash_on_third(conn, site_id, rows):
        calls["n"] += 1
        rows = list(rows)
        real(conn, site_id, rows[:5])          # half of the batch is written inside the transaction...
        if calls["n"] == 3:
            raise RuntimeError("power cut")    # ...and then the process dies
        real(conn, site_id, rows[5:])

    monkeypatch.setattr(importer, "upsert_items", crash_on_third)
    with pytest.raises(RuntimeError):
        import_items(engine, site.site_id, path)
    assert len(_items(engine)) == 20           # two whole batches, nothing of the third
    monkeypatch.setattr(importer, "upsert_items", real)
    assert import_items(engine, site.site_id, path).stored == 35
    assert len(_items(engine)) == 35
