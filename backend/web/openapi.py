"""``GET /openapi.json``: the public API (v1) as an OpenAPI 3.1 description, the contract of docs api.md in a form
tools read (clients, fuzzers: tests/web/test_openapi.py fuzzes the app from it).

Only the public API is described: the widget's and the sites' endpoints and the operations endpoints, not the
admin pages nor the demo site. Limits come from the modules that enforce them, so the description cannot drift.
"""
from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from backend.store.items import ATTRIBUTES_MAX, CATEGORY_MAX, TITLE_MAX, URL_MAX
from backend.algorithms import FALLBACKS, NAMES
from backend.store.placement_rules import ATTRIBUTE_RE, MAX_RULES, MAX_VALUES, VALUE_MAX
from backend.store.placements import MAX_BLOCKED, MAX_N, PAGE_KINDS
from backend.store.tables import ID_MAX, REC_MAX
from backend.web.event_schema import EPOCH_2000_MS, MAX_BODY_BYTES, MAX_EVENTS, MAX_IMPRESSION_ITEMS
from backend.web.items_api import MAX_ITEMS

PATH = "/openapi.json"

_SESSION = {"type": "string", "pattern": "^[A-Za-z0-9_-]{22,64}$", "minLength": 22, "maxLength": 64,
            "description": "the tab's random session id (>= 128 bits, base64url)"}
_ITEM_ID = {"type": "string", "minLength": 1, "maxLength": ID_MAX, "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]+$",
            "description": "an item id: printable characters (no control characters, and no Unicode separators "
                           "or format characters other than the space)"}
_REC = {"type": "string", "pattern": f"^r_[A-Za-z0-9_-]{{1,{REC_MAX - 2}}}$",
        "description": "the `rec` id of a recommendations answer"}
_CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code, e.g. EUR"}
_TS = {"type": "integer", "minimum": EPOCH_2000_MS,
       "description": "client time, milliseconds since 1970-01-01 UTC (after 2000, at most a day ahead of the server)"}
_AMOUNT = {"type": "number", "minimum": 0, "maximum": 1e12}


def _event(etype: str, required: dict[str, Any], optional: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["type", *required],
            "properties": {"type": {"const": etype}, **required, **optional, "ts": _TS}}


_EVENTS = {
    "ViewEvent": _event("view", {"item": _ITEM_ID}, {"rec": _REC}),
    "RecImpressionEvent": _event("rec_impression", {"rec": _REC, "items": {
        "type": "array", "items": _ITEM_ID, "minItems": 1, "maxItems": MAX_IMPRESSION_ITEMS}}, {}),
    "RecClickEvent": _event("rec_click", {"rec": _REC, "item": _ITEM_ID}, {}),
    "PlayEvent": _event("play", {"item": _ITEM_ID}, {"rec": _REC}),
    "WatchEvent": _event("watch", {"item": _ITEM_ID, "seconds": {"type": "number", "minimum": 0, "maximum": 86400}},
                         {"rec": _REC}),
    "CartEvent": _event("cart", {"item": _ITEM_ID}, {"rec": _REC, "value": _AMOUNT, "currency": _CURRENCY}),
    "PurchaseEvent": _event("purchase", {"item": _ITEM_ID}, {"rec": _REC, "value": _AMOUNT, "currency": _CURRENCY}),
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _reply(description: str, schema: dict[str, Any] | None = None, headers: dict[str, Any] | None = None,
           content: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = _json(schema)
    if content is not None:
        out["content"] = content
    if headers:
        out["headers"] = headers
    return out


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return _reply(description, _ref("Problem"), headers)


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}}
_ORIGIN = {"name": "Origin", "in": "header", "required": False, "schema": {"type": "string"},
           "description": "set by browsers; when present it must be one of the site's allowed origins. Requests "
                          "without it (servers, scripts) are accepted by design: see the README's threat model"}
_SECRET = [{"secretKey": []}]
_PLAIN = {"text/plain": {"schema": {"type": "string"}}}
_NOT_READY = _problem("the server cannot answer right now: retry after `Retry-After`", _RETRY_AFTER)
_UNAUTHORIZED = _problem("no valid secret key", {"WWW-Authenticate": {"schema": {"type": "string"}}})
_PLACEMENT_NAME = {"name": "name", "in": "path", "required": True, "description": "the placement's name",
                   "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}}
_NUMBER_OR_NULL = {"type": ["number", "null"], "minimum": 0}
_RULE = {"oneOf": [
    {"type": "object", "additionalProperties": False, "required": ["field", "op", "values"],
     "properties": {"field": {"const": "category"}, "op": {"enum": ["in", "not_in"]},
                    "values": {"type": "array", "minItems": 1, "maxItems": MAX_VALUES,
                               "items": {"type": "string", "minLength": 1, "maxLength": VALUE_MAX}}}},
    {"type": "object", "additionalProperties": False, "required": ["field", "op"],
     "description": "min and/or max: prices (between) or factors of the page item's price (relative)",
     "properties": {"field": {"const": "price"}, "op": {"enum": ["between", "relative"]},
                    "min": _NUMBER_OR_NULL, "max": _NUMBER_OR_NULL}},
    {"type": "object", "additionalProperties": False, "required": ["field", "op", "name", "value"],
     "properties": {"field": {"const": "attribute"}, "op": {"const": "equals"},
                    "name": {"type": "string", "pattern": ATTRIBUTE_RE.pattern},
                    "value": {"type": ["string", "number", "boolean"]}}},
]}
_PLACEMENT_FIELDS = {
    "page_kind": {"enum": list(PAGE_KINDS)},
    "algorithm": {"type": "string", "description": f"one of {', '.join(NAMES)}"},
    "n": {"type": "integer", "minimum": 1, "maximum": MAX_N},
    "title": {"type": "string", "maxLength": 200},
    "exclude_seen": {"type": "boolean"}, "only_available": {"type": "boolean"}, "same_category": {"type": "boolean"},
    "fallback": {"type": "array", "items": {"enum": list(FALLBACKS)}, "uniqueItems": True},
    "diversity": {"type": "number", "minimum": 0, "maximum": 1,
                  "description": "0: relevance only; up to 1: re-ranked for variety (MMR over item vectors)"},
    "max_per_category": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_N},
    "pinned": {"type": "array", "maxItems": MAX_N, "items": {
        "type": "object", "additionalProperties": False, "required": ["item", "position"],
        "properties": {"item": _ITEM_ID, "position": {"type": "integer", "minimum": 1, "maximum": MAX_N}}}},
    "blocked": {"type": "array", "maxItems": MAX_BLOCKED, "items": _ITEM_ID},
    "rules": {"type": "array", "maxItems": MAX_RULES, "items": _RULE},
}


def document() -> dict[str, Any]:
    """The OpenAPI description of the public API (a fresh dict)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Upnext public API", "version": "1",
                 "description": "Session-based recommendations: events from the widget, recommendations for a "
                                "page, the catalogue from the site's servers. Publishable keys (pk_...) are safe "
                                "in pages; secret keys (sk_...) are for server-to-server calls only."},
        "paths": {
            "/v1/events": {
                "post": {
                    "operationId": "postEvents",
                    "summary": "Store a batch of a session's events (all or nothing)",
                    "description": f"At most {MAX_EVENTS} events and {MAX_BODY_BYTES // 1024} KiB. Browsers send "
                                   "the JSON as text/plain (no preflight) or application/json; the reply comes "
                                   "only once every event is committed.",
                    "parameters": [_ORIGIN],
                    "requestBody": {"required": True, "content": {
                        "application/json": {"schema": _ref("EventBatch")},
                        "text/plain": {"schema": {"type": "string",
                                                  "description": "an EventBatch as JSON text"}}}},
                    "responses": {
                        "202": _reply("every event is durably stored", {
                            "type": "object", "required": ["accepted"], "additionalProperties": False,
                            "properties": {"accepted": {"type": "integer", "minimum": 1,
                                                        "maximum": MAX_EVENTS}}}),
                        "400": _problem("malformed JSON or invalid fields; `problems` names each field"),
                        "401": _problem("unknown key"),
                        "403": _problem("the Origin is not allowed for this key"),
                        "413": _problem(f"body over {MAX_BODY_BYTES // 1024} KiB or over {MAX_EVENTS} events"),
                        "429": _problem("the key or the session sends too fast", _RETRY_AFTER),
                        "503": _NOT_READY,
                    },
                },
                "options": {
                    "operationId": "preflightEvents",
                    "summary": "CORS preflight of application/json posts",
                    "parameters": [{**_ORIGIN, "description": "the page's origin: allowed when some site allows it"},
                                   {"name": "Access-Control-Request-Method", "in": "header", "required": False,
                                    "schema": {"type": "string"}}],
                    "responses": {"204": {"description": "allowed: CORS headers for the origin"},
                                  "403": {"description": "no site allows this origin"}},
                },
            },
            "/v1/recommendations": {
                "get": {
                    "operationId": "getRecommendations",
                    "summary": "A list of items for a placement on a page of a session",
                    "parameters": [
                        {"name": "key", "in": "query", "required": True, "schema": {"type": "string"},
                         "description": "the site's publishable key (pk_...)"},
                        {"name": "placement", "in": "query", "required": True,
                         "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
                         "description": "the placement's name (the widget's data-upnext)"},
                        {"name": "session", "in": "query", "required": False, "schema": _SESSION,
                         "description": "absent under Global Privacy Control: popular items, no experiment"},
                        {"name": "item", "in": "query", "required": False, "schema": _ITEM_ID,
                         "description": "the item this page shows"},
                        {"name": "n", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_N}},
                        {"name": "exclude", "in": "query", "required": False, "schema": {"type": "string"},
                         "description": "comma-separated item ids already on the page (at most 100)"},
                        {"name": "history", "in": "query", "required": False, "schema": {"type": "string"},
                         "description": "comma-separated item ids of the session, oldest first (at most 100; "
                                        "the last 20 count)"},
                        _ORIGIN,
                    ],
                    "responses": {
                        "200": _reply("the list (never empty while the catalogue has available items)",
                                      _ref("Recommendations")),
                        "400": _problem("invalid parameters; `problems` names each one"),
                        "401": _problem("unknown key"),
                        "403": _problem("the Origin is not allowed for this key"),
                        "503": _NOT_READY,
                    },
                },
            },
            "/v1/items": {
                "put": {
                    "operationId": "putItems",
                    "summary": "Upsert catalogue items (all or nothing)",
                    "description": f"A JSON array or JSON lines of items, at most {MAX_ITEMS} items and 32 MiB; "
                                   "one invalid record refuses the request, listing every problem.",
                    "security": _SECRET,
                    "requestBody": {"required": True, "content": {
                        "application/json": {"schema": {"type": "array", "items": _ref("Item"), "minItems": 1}},
                        "application/x-ndjson": {"schema": {"type": "string",
                                                            "description": "one Item as JSON per line"}}}},
                    "responses": {
                        "200": _reply("stored", {"type": "object", "required": ["upserted"],
                                                 "additionalProperties": False,
                                                 "properties": {"upserted": {"type": "integer", "minimum": 1}}}),
                        "400": _problem("malformed body or invalid items: nothing was stored"),
                        "401": _problem("no valid secret key", {"WWW-Authenticate": {"schema": {"type": "string"}}}),
                        "413": _problem(f"body over 32 MiB or over {MAX_ITEMS} items"),
                        "503": _NOT_READY,
                    },
                },
            },
            "/v1/items/{id}": {
                "delete": {
                    "operationId": "deleteItem",
                    "summary": "Remove an item from the catalogue",
                    "security": _SECRET,
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": _ITEM_ID,
                                    "description": "the item id, percent-encoded (it may contain /)"}],
                    "responses": {
                        "204": {"description": "deleted"},
                        "401": _problem("no valid secret key", {"WWW-Authenticate": {"schema": {"type": "string"}}}),
                        "404": {"description": "no such item in this site's catalogue (text/plain when the "
                                               "path cannot name an item at all, e.g. it holds a line break)",
                                "content": {**_json(_ref("Problem")), **_PLAIN}},
                        "503": _NOT_READY,
                    },
                },
            },
            "/v1/placements": {
                "get": {
                    "operationId": "listPlacements",
                    "summary": "The site's configured placements",
                    "security": _SECRET,
                    "responses": {
                        "200": _reply("the placements, by name", {
                            "type": "object", "required": ["placements"], "additionalProperties": False,
                            "properties": {"placements": {"type": "array", "items": _ref("Placement")}}}),
                        "401": _UNAUTHORIZED,
                        "503": _NOT_READY,
                    },
                },
            },
            "/v1/placements/{name}": {
                "get": {
                    "operationId": "getPlacement",
                    "summary": "One placement's settings",
                    "security": _SECRET,
                    "parameters": [_PLACEMENT_NAME],
                    "responses": {"200": _reply("the settings", _ref("Placement")),
                                  "401": _UNAUTHORIZED, "404": _problem("no such placement"), "503": _NOT_READY},
                },
                "put": {
                    "operationId": "putPlacement",
                    "summary": "Create or replace a placement (all or nothing)",
                    "description": "Fields left out take their defaults; one invalid field refuses the request, "
                                   "listing every problem.",
                    "security": _SECRET,
                    "parameters": [_PLACEMENT_NAME],
                    "requestBody": {"required": True, "content": _json(_ref("PlacementSettings"))},
                    "responses": {"200": _reply("stored; the settings as now served", _ref("Placement")),
                                  "400": _problem("malformed body or invalid settings: nothing was stored"),
                                  "401": _UNAUTHORIZED, "413": _problem("body over 1 MiB"), "503": _NOT_READY},
                },
                "delete": {
                    "operationId": "deletePlacement",
                    "summary": "Remove a placement (pages naming it get the defaults)",
                    "security": _SECRET,
                    "parameters": [_PLACEMENT_NAME],
                    "responses": {"204": {"description": "deleted"}, "401": _UNAUTHORIZED,
                                  "404": _problem("no such placement"), "503": _NOT_READY},
                },
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Is the database reachable?",
                    "responses": {
                        "200": _reply("healthy", {"type": "object", "required": ["status"],
                                                  "properties": {"status": {"const": "ok"}}}),
                        "503": _reply("unhealthy", {"type": "object", "required": ["status"],
                                                    "properties": {"status": {"const": "error"}}}),
                    },
                },
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics (text format)",
                    "responses": {"200": _reply("metrics", content={"text/plain": {"schema": {"type": "string"}}})},
                },
            },
            "/w.js": {
                "get": {
                    "operationId": "widget",
                    "summary": "The widget script (cached 5 minutes, then revalidated by ETag)",
                    "parameters": [{"name": "If-None-Match", "in": "header", "required": False,
                                    "schema": {"type": "string"}}],
                    "responses": {
                        "200": _reply("the script", content={"text/javascript": {"schema": {"type": "string"}}}),
                        "304": {"description": "not modified"},
                        "503": {"description": "the widget has not been built",
                                "content": {"text/plain": {"schema": {"type": "string"}}}},
                    },
                },
            },
            "/w.{hash}.js": {
                "get": {
                    "operationId": "widgetPinned",
                    "summary": "The widget under an immutable URL (an outdated hash redirects to /w.js)",
                    "parameters": [{"name": "hash", "in": "path", "required": True,
                                    "schema": {"type": "string", "pattern": "^[^/]+$"}},
                                   {"name": "If-None-Match", "in": "header", "required": False,
                                    "schema": {"type": "string"}}],
                    "responses": {
                        "200": _reply("the script", content={"text/javascript": {"schema": {"type": "string"}}}),
                        "302": {"description": "not the current hash: go to /w.js"},
                        "404": {"description": "not a widget URL (e.g. a line break in the hash)", "content": _PLAIN},
                        "304": {"description": "not modified"},
                        "503": {"description": "the widget has not been built",
                                "content": {"text/plain": {"schema": {"type": "string"}}}},
                    },
                },
            },
            PATH: {
                "get": {
                    "operationId": "openapi",
                    "summary": "This description",
                    "responses": {"200": _reply("the OpenAPI document", {"type": "object"})},
                },
            },
        },
        "components": {
            "securitySchemes": {"secretKey": {"type": "http", "scheme": "bearer",
                                              "description": "the site's secret key (sk_...), never in a page"}},
            "schemas": {
                "EventBatch": {
                    "type": "object", "additionalProperties": False, "required": ["key", "session", "events"],
                    "properties": {
                        "key": {"type": "string", "minLength": 1, "description": "the publishable key (pk_...)"},
                        "session": _SESSION,
                        "events": {"type": "array", "minItems": 1, "maxItems": MAX_EVENTS,
                                   "items": {"oneOf": [_ref(name) for name in _EVENTS]}},
                    },
                },
                **_EVENTS,
                "Item": {
                    "type": "object", "additionalProperties": False, "required": ["id"],
                    "properties": {
                        "id": _ITEM_ID,
                        "title": {"type": ["string", "null"], "maxLength": TITLE_MAX},
                        "url": {"type": ["string", "null"], "maxLength": URL_MAX,
                                "description": "http(s):// or a path on the site (/p/1)"},
                        "image": {"type": ["string", "null"], "maxLength": URL_MAX},
                        "price": {"type": ["number", "null"], "minimum": 0, "maximum": 1e12},
                        "currency": {**_CURRENCY, "type": ["string", "null"]},
                        "category": {"type": ["string", "null"], "maxLength": CATEGORY_MAX},
                        "available": {"type": "boolean", "default": True},
                        "attributes": {"type": ["object", "null"],
                                       "description": f"custom fields, at most {ATTRIBUTES_MAX // 1024} KiB as JSON"},
                    },
                },
                "PlacementSettings": {
                    "type": "object", "additionalProperties": False,
                    "properties": {"name": {"type": "string", "description": "if given, the path's name"},
                                   **_PLACEMENT_FIELDS},
                },
                "Placement": {
                    "type": "object", "additionalProperties": False, "required": ["name", *_PLACEMENT_FIELDS],
                    "properties": {"name": {"type": "string"}, **_PLACEMENT_FIELDS},
                },
                "RecommendedItem": {
                    "type": "object", "required": ["id"],
                    "properties": {"id": {"type": "string"}, "title": {"type": ["string", "null"]},
                                   "url": {"type": ["string", "null"]}, "image": {"type": ["string", "null"]},
                                   "price": {"type": ["number", "null"]}, "currency": {"type": ["string", "null"]}},
                },
                "Recommendations": {
                    "type": "object",
                    "required": ["rec", "placement", "algorithm", "arm", "experiment", "fallback", "title", "items"],
                    "properties": {
                        "rec": _REC,
                        "placement": {"type": "string"},
                        "algorithm": {"type": "string",
                                      "description": f"what served: {', '.join(NAMES)} (or an arm's)"},
                        "arm": {"type": ["string", "null"], "description": "the experiment arm, if any"},
                        "experiment": {"oneOf": [{"type": "null"}, {
                            "type": "object", "required": ["id", "arm"],
                            "properties": {"id": {"type": "integer"}, "arm": {"type": ["string", "null"]},
                                           "outside": {"type": "string"}}}]},
                        "fallback": {"type": ["string", "null"],
                                     "description": "why the algorithm did not answer alone, and what filled in"},
                        "title": {"type": ["string", "null"]},
                        "items": {"type": "array", "items": _ref("RecommendedItem")},
                    },
                },
                "Problem": {
                    "type": "object", "required": ["error"],
                    "properties": {
                        "error": {"type": "string"},
                        "problems": {"type": "array", "items": {
                            "type": "object", "required": ["message"],
                            "properties": {"field": {"type": "string"}, "message": {"type": "string"},
                                           "index": {"type": "integer"}, "id": {"type": ["string", "null"]}}}},
                    },
                },
            },
        },
    }


_BODY = orjson.dumps(document())


async def openapi(request: Request) -> Response:
    return Response(_BODY, media_type="application/json",
                    headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300"})
