"""One rule for item ids (backend/item_ids.py): the widget and every server check (events, recommendations,
catalogue) accept and refuse the same ids, and the history the widget keeps is always one the server takes back.

The widget's side is the built widget itself, run in Node with a minimal browser shim: an id counts as accepted
by the widget when ``upnext('view', id)`` queues a view event for it."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from urllib.parse import urlencode

import pytest
from starlette.requests import Request

from backend.settings import REPO_ROOT
from backend.store.items import ItemInvalid, clean_item
from backend.web.event_schema import BatchError, check_events
from backend.web.recommend import parse

NOW_MS = 1_800_000_000_000

TRICKY_IDS = {
    "plain": "SKU-1",
    "spaces inside and around": " SKU 1 ",
    "non-breaking space": "SKU\u00a01",
    "narrow no-break space": "SKU\u202f1",
    "ideographic space": "SKU\u30001",
    "zero-width joiner": "SKU\u200d1",
    "zero-width space": "\u200bSKU",
    "right-to-left mark": "\u200fSKU-1",
    "left-to-right mark": "SKU-1\u200e",
    "right-to-left override": "\u202eSKU",
    "byte order mark": "\ufeffSKU",
    "soft hyphen": "SK\u00adU",
    "line separator": "SKU\u2028",
    "NUL": "SKU\x001",
    "newline": "SKU\n",
    "tab": "SKU\t1",
    "DEL": "SKU\x7f",
    "C1 control (NEL)": "SKU\x85",
    "lone surrogate": "SKU\ud800",
    "private use": "SKU\ue000",
    "supplementary private use": "SKU\U000f0000",
    "language tag": "SKU\U000e0041",
    "emoji": "\U0001f3a7",
    "emoji with variation selector": "\u2764\ufe0f",
    "flag (regional indicators)": "\U0001f1eb\U0001f1f7",
    "family emoji (joined with ZWJ)": "\U0001f469\u200d\U0001f467",
    "combining accent": "cafe\u0301",
    "Arabic letters": "\u0645\u0646\u062a\u062c-7",
    "CJK": "\u5546\u54c1-7",
    "comma": "SKU-1,red",
    "only a comma": ",",
    "percent and plus": "50%+off&x=1",
    "empty": "",
    "256 characters": "a" * 256,
    "257 characters": "a" * 257,
    "256 emoji (512 UTF-16 units)": "\U0001f3a7" * 256,
    "257 emoji": "\U0001f3a7" * 257,
}

HARNESS = r"""
const fs = require('fs'), vm = require('vm');
const script = fs.readFileSync(process.argv[2], 'utf8');
const ids = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const data = {};
const storage = { getItem: k => (k in data ? data[k] : null), setItem: (k, v) => { data[k] = String(v); },
                  removeItem: k => { delete data[k]; } };
const noop = () => {};
globalThis.window = { sessionStorage: storage, console: { warn: noop }, addEventListener: noop };
globalThis.document = { currentScript: { dataset: { key: 'pk_test' }, src: 'https://reco.test/w.js' },
  readyState: 'complete', baseURI: 'https://shop.test/', querySelector: () => null,
  querySelectorAll: () => [], documentElement: {}, addEventListener: noop };
Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true });
globalThis.location = { href: 'https://shop.test/', origin: 'https://shop.test' };
globalThis.MutationObserver = class { observe() {} };
globalThis.fetch = () => new Promise(noop);
vm.runInThisContext(script);
const out = [];
for (const id of ids) {
  const before = JSON.parse(data['upnext:queue'] || '[]').length;
  window.upnext('view', id);
  const queue = JSON.parse(data['upnext:queue'] || '[]');
  out.push(queue.length > before && queue[queue.length - 1].e.item === id);
}
const session = JSON.parse(data['upnext:session'] || '{"history": []}');
process.stdout.write(JSON.stringify({ accepted: out, history: session.history }));
process.exit(0);
"""


def _load_build():
    spec = importlib.util.spec_from_file_location("widget_build_for_ids", REPO_ROOT / "widget" / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture(scope="module")
def widget_verdicts(tmp_path_factory) -> dict:
    """{"accepted": {name: bool}, "history": [...]} from the widget built from widget/src now."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: it runs the built widget for this test")
    root = tmp_path_factory.mktemp("widget")
    (root / "w.js").write_bytes(_load_build().build().script)
    # ensure_ascii: a lone surrogate travels as \ud800 and JSON.parse makes the same lone surrogate of it
    (root / "ids.json").write_text(json.dumps(list(TRICKY_IDS.values())))
    (root / "harness.js").write_text(HARNESS)
    done = subprocess.run([node, str(root / "harness.js"), str(root / "w.js"), str(root / "ids.json")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    return {"accepted": dict(zip(TRICKY_IDS, result["accepted"])), "history": result["history"]}


def _request(**query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/v1/recommendations", "headers": [],
                    "query_string": urlencode({"placement": "similar", **query}).encode()})


def event_accepts(item_id: str) -> bool:
    try:
        check_events([{"type": "view", "item": item_id}], NOW_MS)
    except BatchError:
        return False
    return True


def recommendations_accept(item_id: str) -> bool:
    return not parse(_request(item=item_id))[1]


def catalogue_accepts(item_id: str) -> bool:
    try:
        clean_item({"id": item_id})
    except ItemInvalid:
        return False
    return True


@pytest.mark.parametrize("name", TRICKY_IDS)
def test_the_widget_and_the_server_agree_on_an_id(name, widget_verdicts):
    item_id = TRICKY_IDS[name]
    server = event_accepts(item_id)
    # "empty" asks for no item at all in a recommendation query: that is fine, not an id refused; a lone
    # surrogate cannot be put in a URL at all (browsers send U+FFFD instead)
    if item_id and item_id != TRICKY_IDS["lone surrogate"]:
        assert recommendations_accept(item_id) == server, "recommendations and events disagree"
    assert catalogue_accepts(item_id) == server, "the catalogue and events disagree"
    assert widget_verdicts["accepted"][name] == server, (
        f"{name}: the widget {'sends' if widget_verdicts['accepted'][name] else 'drops'} {item_id!r}, "
        f"the server {'accepts' if server else 'refuses'} it")


def test_the_widgets_history_is_one_the_server_takes_back_whole(widget_verdicts):
    history = widget_verdicts["history"]
    assert history, "the widget kept no history at all"
    assert "SKU-1" in history and "\U0001f3a7" in history
    args, problems = parse(_request(history=",".join(history)))
    assert problems == []
    assert list(args["history"]) == history[-len(args["history"]):] and len(args["history"]) == len(history)
    assert "SKU-1,red" not in history                  # sendable as an event, but it cannot travel in a list


def test_the_rule_refuses_what_is_not_an_id():
    from backend.item_ids import id_problem, valid_id

    for bad in (None, 7, ["SKU-1"], b"SKU-1"):
        assert not valid_id(bad) and id_problem(bad) == "must be a string"
    assert "1-256" in id_problem("a" * 257) and "1-256" in id_problem("")
    assert "U+00A0" in id_problem("SKU\u00a01")
    assert id_problem("SKU-1") is None


def test_the_table_of_forbidden_characters_matches_the_unicode_categories():
    """Every assigned character is forbidden exactly when it is a control, format, surrogate, private-use or
    separator character (the plain space excepted): what Python's str.isprintable() refuses. A newer Python
    with a newer Unicode fails this test until FORBIDDEN is brought up to date."""
    import unicodedata

    from backend.item_ids import FORBIDDEN

    forbidden = bytearray(0x110000)
    for lo, hi in FORBIDDEN:
        forbidden[lo:hi + 1] = b"\x01" * (hi - lo + 1)
    wrong = [f"U+{cp:04X} {unicodedata.category(chr(cp))}" for cp in range(0x110000)
             if unicodedata.category(chr(cp)) != "Cn"
             and bool(forbidden[cp]) != (not chr(cp).isprintable())]
    assert wrong == []
    assert list(FORBIDDEN) == sorted(FORBIDDEN) and all(lo <= hi for lo, hi in FORBIDDEN)
