import json

import pytest

from sqlalchemy import select

from backend.store.tables import Item


def items(engine):
    with engine.connect() as conn:
        return {r.id: r for r in conn.execute(select(Item)).all()}


def auth(site):
    return {"Authorization": f"Bearer {site.secret_key}"}


def test_put_items_json_array_then_json_lines_upserts(client, site, engine):
    r = client.put("/v1/items", headers=auth(site), content=json.dumps([
        {"id": "SKU-1", "title": "<img src=x onerror=alert(1)>", "url": "/p/1", "price": 10, "currency": "EUR",
         "category": "shoes", "attributes": {"size": 42}},
        {"id": "SKU-2", "title": "Hat", "available": False}]))
    assert r.status_code == 200 and r.json() == {"upserted": 2}
    r = client.put("/v1/items", headers=auth(site), content='{"id": "SKU-1", "title": "Shoe"}\n{"id": "SKU-3"}\n')
    assert r.json() == {"upserted": 2}
    stored = items(engine)
    assert set(stored) == {"SKU-1", "SKU-2", "SKU-3"}
    assert stored["SKU-1"].title == "Shoe" and stored["SKU-2"].available is False


def test_html_title_is_stored_verbatim(client, site, engine):
    title = "<script>alert('x')</script> & \"quotes\""
    client.put("/v1/items", headers=auth(site), content=json.dumps([{"id": "A", "title": title}]))
    assert items(engine)["A"].title == title


def test_one_bad_record_refuses_the_whole_request_with_every_problem(client, site, engine):
    r = client.put("/v1/items", headers=auth(site), content=json.dumps([
        {"id": "OK"}, {"id": "B", "url": "javascript:alert(1)"}, {"title": "no id"}]))
    assert r.status_code == 400
    problems = r.json()["problems"]
    assert {(p["index"], p["field"]) for p in problems} == {(1, "url"), (2, "id")}
    assert items(engine) == {}


def test_auth_is_required_and_publishable_key_is_not_enough(client, site):
    body = json.dumps([{"id": "A"}])
    assert client.put("/v1/items", content=body).status_code == 401
    assert client.put("/v1/items", content=body,
                      headers={"Authorization": f"Bearer {site.publishable_key}"}).status_code == 401
    r = client.put("/v1/items", content=body, headers={"Authorization": "Bearer sk_live_wrong"})
    assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"]


def test_malformed_and_empty_bodies(client, site):
    assert client.put("/v1/items", headers=auth(site), content="[{").status_code == 400
    assert client.put("/v1/items", headers=auth(site), content="").status_code == 400
    assert client.put("/v1/items", headers=auth(site), content='{"id": "A"').status_code == 400


def test_delete_item(client, site, engine):
    client.put("/v1/items", headers=auth(site), content=json.dumps([{"id": "a/b c"}, {"id": "keep"}]))
    assert client.delete("/v1/items/a%2Fb%20c", headers=auth(site)).status_code == 204
    assert set(items(engine)) == {"keep"}
    assert client.delete("/v1/items/a%2Fb%20c", headers=auth(site)).status_code == 404
    assert client.delete("/v1/items/keep").status_code == 401


@pytest.mark.parametrize("record, field", [
    ({"id": "A", "title": "a\x00b"}, "title"), ({"id": "A", "url": "/p\x00"}, "url"),
    ({"id": "A", "image": "/i\x00.png"}, "image"), ({"id": "A", "category": "x\x00"}, "category"),
    ({"id": "A", "attributes": {"k": ["a\x00"]}}, "attributes"), ({"id": "A", "attributes": {"\x00": 1}}, "attributes"),
    ({"id": "A\x00"}, "id")])
def test_nul_characters_are_refused_not_a_database_error(client, site, engine, record, field):
    """Found by the fuzzer (tests/web/test_openapi.py): PostgreSQL text cannot hold NUL, the store raised, 500."""
    r = client.put("/v1/items", headers=auth(site), content=json.dumps([{"id": "OK"}, record]))
    assert r.status_code == 400
    assert {(p["index"], p["field"]) for p in r.json()["problems"]} == {(1, field)}
    assert items(engine) == {}


@pytest.mark.parametrize("path", ["/v1/items/%00", "/v1/items/a%00b", "/v1/items/a%0Ab", "/v1/items/" + "x" * 257])
def test_deleting_an_id_no_item_can_have_is_a_404(client, site, path):
    """Found by the fuzzer: DELETE /v1/items/%00 reached PostgreSQL with a NUL and answered 500."""
    assert client.delete(path, headers=auth(site)).status_code == 404


def test_deeply_nested_attributes_are_refused_not_a_recursion_error(client, site, engine):
    """Found while fuzzing by hand: 1000 nested lists in attributes raised RecursionError in the store, 500."""
    deep = "[" * 1000 + "]" * 1000
    r = client.put("/v1/items", headers=auth(site), content='[{"id": "A", "attributes": {"k": %s}}]' % deep)
    assert r.status_code == 400 and r.json()["problems"][0]["field"] == "attributes"
    assert items(engine) == {}
    nested = json.dumps([{"id": "B", "attributes": {"k": [[[["ok"]]]]}}])
    assert client.put("/v1/items", headers=auth(site), content=nested).status_code == 200
