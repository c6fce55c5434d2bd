"""Placements as code: GET/PUT/DELETE /v1/placements/{name} with the secret key, all or nothing."""
import json

from backend.store.placements import list_placements

RULES = [{"field": "category", "op": "not_in", "values": ["gifts"]},
         {"field": "price", "op": "relative", "min": 0.5, "max": 2.0},
         {"field": "attribute", "name": "color", "op": "equals", "value": "red"}]
BODY = {"algorithm": "item_to_item", "n": 6, "title": "Similar", "diversity": 0.3, "max_per_category": 2,
        "pinned": [{"item": "SKU-9", "position": 2}], "blocked": ["SKU-1"], "rules": RULES}


def auth(site):
    return {"Authorization": f"Bearer {site.secret_key}"}


def test_put_get_list_delete(client, site, engine):
    r = client.put("/v1/placements/product-page", headers=auth(site), content=json.dumps(BODY))
    assert r.status_code == 200
    assert r.json() == {"name": "product-page", "page_kind": "product", "exclude_seen": True, "only_available": True,
                        "same_category": False, "fallback": ["item_to_item", "popular"], **BODY}
    stored = list_placements(engine, site.site_id)[0]
    assert stored.diversity == 0.3 and stored.pinned == (("SKU-9", 2),) and len(stored.rules) == 3
    assert client.get("/v1/placements/product-page", headers=auth(site)).json() == r.json()
    assert client.get("/v1/placements", headers=auth(site)).json() == {"placements": [r.json()]}
    # a PUT replaces the whole placement: what it leaves out takes the defaults
    again = client.put("/v1/placements/product-page", headers=auth(site), content=json.dumps({"n": 4})).json()
    assert again["algorithm"] == "gru4rec_next" and again["rules"] == [] and again["diversity"] == 0.0
    assert client.delete("/v1/placements/product-page", headers=auth(site)).status_code == 204
    assert client.delete("/v1/placements/product-page", headers=auth(site)).status_code == 404
    assert client.get("/v1/placements/product-page", headers=auth(site)).status_code == 404


def test_the_served_answer_follows_a_put_at_once(client, site):
    client.put("/v1/items", headers=auth(site), content=json.dumps(
        [{"id": f"SKU-{i}", "title": f"Item {i}", "category": "gifts" if i % 2 else "shoes"} for i in range(10)]))
    client.put("/v1/placements/home", headers=auth(site), content=json.dumps(
        {"algorithm": "popular", "n": 3, "rules": [{"field": "category", "op": "in", "values": ["shoes"]}],
         "pinned": [{"item": "SKU-1", "position": 3}]}))
    r = client.get("/v1/recommendations", params={"key": site.publishable_key, "placement": "home"})
    ids = [i["id"] for i in r.json()["items"]]
    assert r.status_code == 200 and len(ids) == 3 and ids[2] == "SKU-1"
    assert all(int(i.split("-")[1]) % 2 == 0 for i in ids[:2])
    assert set(r.json()) == {"rec", "placement", "algorithm", "arm", "experiment", "fallback", "title", "items"}


def test_an_invalid_placement_stores_nothing_and_lists_every_problem(client, site, engine):
    bad = {"n": 0, "diversity": 1.5, "colour": "red", "pinned": [{"item": "A", "position": 1, "x": 1}],
           "rules": [{"field": "price", "op": "between", "min": 5, "max": 1}, {"field": "size"}], "name": "other"}
    r = client.put("/v1/placements/p", headers=auth(site), content=json.dumps(bad))
    assert r.status_code == 400 and r.json()["error"] == "invalid placement: nothing was stored"
    problems = {p["field"]: p["message"] for p in r.json()["problems"]}
    assert set(problems) == {"n", "diversity", "colour", "pinned", "rules[0]", "rules[1]", "name"}
    assert problems["rules[0]"] == "price between: min (5) is above max (1)"
    assert list_placements(engine, site.site_id) == []
    for body in ("[1, 2]", "{", '{"title": "a\\u0000b"}', "7"):
        assert client.put("/v1/placements/p", headers=auth(site), content=body).status_code == 400
    r = client.put("/v1/placements/Bad%20Name", headers=auth(site), content="{}")
    assert r.status_code == 400 and r.json()["problems"][0]["field"] == "name"
    assert list_placements(engine, site.site_id) == []


def test_the_secret_key_is_required(client, site):
    for method, path in (("GET", "/v1/placements"), ("GET", "/v1/placements/p"), ("PUT", "/v1/placements/p"),
                         ("DELETE", "/v1/placements/p")):
        for headers in ({}, {"Authorization": f"Bearer {site.publishable_key}"}):
            assert client.request(method, path, headers=headers, content="{}").status_code == 401


def test_a_blend_placement_is_stored_and_answers(client, site, engine):
    r = client.put("/v1/placements/next", headers=auth(site), content=json.dumps({"algorithm": "gru4rec_blend"}))
    assert r.status_code == 200 and r.json()["algorithm"] == "gru4rec_blend"
    assert list_placements(engine, site.site_id)[0].algorithm == "gru4rec_blend"
    client.put("/v1/items", headers=auth(site), content=json.dumps([{"id": f"SKU-{i}", "title": "x"}
                                                                    for i in range(4)]))
    body = client.get("/v1/recommendations", params={"key": site.publishable_key, "placement": "next",
                                                     "item": "SKU-1"}).json()
    assert body["algorithm"] == "gru4rec_blend" and body["fallback"].startswith("no_model")   # no model yet
    assert "SKU-1" not in [i["id"] for i in body["items"]]
