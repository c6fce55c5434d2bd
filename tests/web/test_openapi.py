"""GET /openapi.json: the public API's OpenAPI description is valid and names exactly the public routes the app
has; then a property-based fuzzer (schemathesis strategies from that description, driven by Hypothesis) sends
random requests, valid and invalid, to the app in-process: no answer is a 5xx, none carries a traceback, nothing
is logged as an error, and every answer matches the description (status, content type, body schema)."""
from __future__ import annotations

import collections
import json
import logging
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_headers_conformance,
                                 response_schema_conformance, status_code_conformance)
from schemathesis.python.asgi import shutdown_lifespans
from starlette.routing import Route

from backend.app import create_app, routes
from backend.clock import now_ms
from backend.publishing import publish_artifact
from backend.store.items import clean_item, upsert_items
from backend.web.openapi import PATH, document
from tests.kernels.random_model import save_random_gru4rec
from tests.web.conftest import ORIGIN

N_ITEMS = 30
FUZZ_CASES = 400        # per database: about 5-10 s each on 2 cores
PRIVATE_PREFIXES = ("/admin", "/demo")      # the admin pages and the demo site are not the public API
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


def _starlette_to_openapi(path: str) -> str:
    """/v1/items/{item_id:path} and /v1/items/{id} both -> /v1/items/{}: names and converters dropped."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_document_is_valid_openapi():
    schemathesis.openapi.from_dict(document()).validate()


def test_an_invalid_document_is_refused_by_the_same_check():
    broken = document()
    broken["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] = 5
    with pytest.raises(Exception, match="not of type"):
        schemathesis.openapi.from_dict(broken).validate()


def test_document_names_exactly_the_public_routes():
    app_routes = set()
    for route in routes():
        if isinstance(route, Route) and not route.path.startswith(PRIVATE_PREFIXES):
            for method in route.methods - {"HEAD"}:
                app_routes.add((_starlette_to_openapi(route.path), method.lower()))
    documented = {(_starlette_to_openapi(path), method) for path, ops in document()["paths"].items()
                  for method in ops}
    assert documented == app_routes


def test_served_document_is_the_description(client):
    r = client.get(PATH)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == document()


@pytest.fixture
def shop(engine, site, tmp_path):
    """The site with a catalogue and a live random model, so that recommendations go through the model."""
    with engine.begin() as conn:
        upsert_items(conn, site.site_id, [clean_item({"id": f"item-{i}", "title": f"Item {i}", "url": f"/p/{i}",
                                                      "price": i + 0.5, "currency": "EUR"}) for i in range(N_ITEMS)])
    publish_artifact(engine, site.site_id, save_random_gru4rec(tmp_path / "model", N_ITEMS, [8], seed=3),
                     model_dir=tmp_path / "models")
    return site


@pytest.fixture
def api(settings, shop):
    """The description as the app serves it, bound to the app (requests go in-process, lifespan running)."""
    schema = schemathesis.openapi.from_asgi(PATH, create_app(settings))
    yield schema
    shutdown_lifespans()


# Operations drawn in proportion: the ones with bodies and keys are where the bugs would be.
WEIGHTS = {"postEvents": 4, "getRecommendations": 4, "putItems": 3, "deleteItem": 2, "putPlacement": 3}
SECRET_OPS = ("putItems", "deleteItem", "listPlacements", "getPlacement", "putPlacement", "deletePlacement")


def _cases(api):
    """Cases of every operation, valid (positive) and invalid (negative) for the description."""
    choices = []
    for result in api.get_all_operations():
        operation = result.ok()
        weight = WEIGHTS.get(operation.definition.raw["operationId"], 1)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            choices += [operation.as_strategy(generation_mode=mode)] * weight
    return st.sampled_from(choices).flatmap(lambda strategy: strategy)


# Characters that break stores and parsers (NUL is refused by PostgreSQL text, a lone surrogate by UTF-8), which
# random text almost never holds: one is slipped into one string of some requests.
NASTY = ["\x00", "\u2028", "\ufeff", "\u202e", "\u00a0", "\\", "%", "\n", "\U0001d7d8", "'\"<>", "\x85"]
# A lone surrogate cannot even be sent (a URL or a body is UTF-8): its JSON escape goes into the bodies sent as text.
NASTY_IN_BODY = NASTY + ["\\ud800"]


def _string_paths(value, at=()):
    """Paths (keys and indexes) of the string leaves of a JSON-like value."""
    if isinstance(value, str):
        yield at
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _string_paths(v, at + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _string_paths(v, at + (i,))


def _poison(case, data):
    """Insert a nasty character into one string of the body, the query or the path parameters."""
    places = [(name, path) for name in ("body", "query", "path_parameters")
              for path in _string_paths(getattr(case, name, None))]
    if not places:
        return
    name, path = data.draw(st.sampled_from(places), label="poisoned string")
    char = data.draw(st.sampled_from(NASTY_IN_BODY if name == "body" else NASTY), label="nasty character")
    if not path:
        setattr(case, name, _insert(getattr(case, name), char, data))
        return
    parent = getattr(case, name)
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = _insert(parent[path[-1]], char, data)


def _insert(text, char, data):
    at = data.draw(st.integers(0, len(text)), label="position")
    return text[:at] + char + text[at:]


def _steer(case, data, shop, json_batches):
    """Random requests rarely hold a real key or item: swap them in on most draws, so that the authenticated
    paths (stored events, model answers, catalogue writes) are fuzzed too, not only the refusals."""
    op = case.operation.definition.raw["operationId"]
    headers = dict(case.headers or {})
    # Hypothesis leans to the first of sampled values (and to False, 0): the likelier choice comes first.
    real_key = data.draw(st.sampled_from([True, True, False]), label="real key")
    real_items = data.draw(st.sampled_from([True, False]), label="real items")
    ids = st.integers(0, N_ITEMS - 1).map(lambda i: f"item-{i}")
    as_text = op == "postEvents" and case.media_type == "text/plain"
    if as_text and data.draw(st.sampled_from([True, False]), label="json as text"):
        case.body = data.draw(json_batches, label="batch")      # what sendBeacon sends: JSON as text/plain
    if op == "postEvents" and isinstance(case.body, dict):
        if real_key:
            case.body["key"] = shop.publishable_key
        for event in case.body.get("events") if isinstance(case.body.get("events"), list) else ():
            if real_items and isinstance(event, dict):
                if "item" in event:
                    event["item"] = data.draw(ids, label="event item")
                if isinstance(event.get("items"), list):
                    event["items"] = data.draw(st.lists(ids, min_size=1, max_size=5), label="impression")
                if "ts" in event:
                    event["ts"] = now_ms() - data.draw(st.integers(0, 10**9), label="age")
        if case.media_type == "text/plain":
            case.body = json.dumps(case.body)
    elif op == "getRecommendations" and isinstance(case.query, dict):
        if real_key:
            case.query["key"] = shop.publishable_key
        if real_items:
            case.query["item"] = data.draw(ids, label="item")
            case.query["history"] = ",".join(data.draw(st.lists(ids, max_size=25), label="history"))
    elif op in SECRET_OPS:
        if real_key:
            headers["Authorization"] = f"Bearer {shop.secret_key}"
        if real_items and op == "deleteItem":
            case.path_parameters["id"] = data.draw(ids, label="deleted item")
    if op in ("postEvents", "preflightEvents", "getRecommendations"):
        origin = data.draw(st.sampled_from([ORIGIN, None, "https://evil.example"]), label="origin")
        if origin:
            headers["Origin"] = origin
    case.headers = headers
    if data.draw(st.sampled_from([False, True]), label="poison"):
        _poison(case, data)
    return op


@pytest.mark.slow
def test_fuzz_public_api(api, shop, caplog):
    caplog.set_level(logging.WARNING)
    seen = collections.Counter()
    cases = _cases(api)
    json_batches = api["/v1/events"]["POST"].as_strategy(media_type="application/json").map(lambda c: c.body)

    @settings(max_examples=FUZZ_CASES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def fuzz(data):
        case = data.draw(cases, label="case")
        op = _steer(case, data, shop, json_batches)
        response = case.call()
        seen[(op, response.status_code)] += 1
        assert response.status_code < 500, case.as_curl_command()
        assert b"Traceback" not in response.content
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        assert not errors, [r.getMessage() for r in errors]
        case.validate_response(response, checks=CHECKS)

    fuzz()
    print(f"\n{sum(seen.values())} cases:", dict(sorted(seen.items())))
    # the authenticated paths were reached, not only the refusals
    assert {("postEvents", 202), ("getRecommendations", 200), ("putItems", 200)} <= set(seen)
