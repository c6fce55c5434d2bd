"""backend/web/widget.py: /w.js and /w.<hash>.js serve the built widget with validators and cache headers."""
from __future__ import annotations

import gzip
import json
import os

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from backend.web.widget import routes

SCRIPT = b"/*! widget */(function(){window.upnext=1})();"
HASH = "0123456789abcdef"


def write_build(static, script: bytes = SCRIPT, digest: str = HASH) -> None:
    static.mkdir(exist_ok=True)
    (static / "w.js").write_bytes(script)
    (static / "w.json").write_text(json.dumps({"hash": digest, "name": f"w.{digest}.js"}))


@pytest.fixture
def static(tmp_path):
    write_build(tmp_path / "static")
    return tmp_path / "static"


@pytest.fixture
def client(static):
    with TestClient(Starlette(routes=routes(static))) as c:
        yield c


def test_w_js_serves_the_built_file_with_etag_and_short_cache(client):
    res = client.get("/w.js", headers={"Accept-Encoding": "identity"})
    assert res.status_code == 200 and res.content == SCRIPT
    assert res.headers["content-type"] == "text/javascript; charset=utf-8"
    assert res.headers["etag"] == f'"{HASH}"'
    assert res.headers["cache-control"] == "public, max-age=300, must-revalidate"
    assert res.headers["access-control-allow-origin"] == "*"
    assert res.headers["x-content-type-options"] == "nosniff"
    assert "content-encoding" not in res.headers


def test_gzip_is_served_when_accepted_under_its_own_etag(client):
    res = client.get("/w.js", headers={"Accept-Encoding": "gzip, br"})
    assert res.headers["content-encoding"] == "gzip" and res.headers["vary"] == "Accept-Encoding"
    assert res.headers["etag"] == f'"{HASH}-gz"'
    assert res.content == SCRIPT                     # httpx decodes it
    assert int(res.headers["content-length"]) == len(gzip.compress(SCRIPT, compresslevel=9, mtime=0))


@pytest.mark.parametrize("if_none_match", [f'"{HASH}"', f'W/"{HASH}-gz"', f'"other", "{HASH}"', "*"])
def test_matching_etag_gets_304(client, if_none_match):
    res = client.get("/w.js", headers={"If-None-Match": if_none_match})
    assert res.status_code == 304 and res.content == b""
    assert res.headers["cache-control"] == "public, max-age=300, must-revalidate"


def test_stale_etag_gets_the_file(client):
    res = client.get("/w.js", headers={"If-None-Match": '"fedcba9876543210"'})
    assert res.status_code == 200 and res.content == SCRIPT


def test_hashed_url_is_immutable_and_an_old_hash_redirects_to_w_js(client):
    res = client.get(f"/w.{HASH}.js")
    assert res.status_code == 200 and res.content == SCRIPT
    assert res.headers["cache-control"] == "public, max-age=31536000, immutable"
    old = client.get("/w.aaaaaaaaaaaaaaaa.js", follow_redirects=False)
    assert old.status_code == 302 and old.headers["location"] == "w.js"
    assert old.headers["cache-control"] == "no-cache"
    assert client.get("/w.aaaaaaaaaaaaaaaa.js").content == SCRIPT


def test_head_answers_without_a_body(client):
    res = client.head("/w.js")
    assert res.status_code == 200 and res.content == b"" and res.headers["etag"]


def test_rebuilt_widget_is_served_without_a_restart(client, static):
    write_build(static, b"/*! v2 */", "fedcba9876543210")
    stamp = (static / "w.js").stat().st_mtime_ns + 10**9      # a different mtime even on coarse clocks
    for name in ("w.js", "w.json"):
        os.utime(static / name, ns=(stamp, stamp))
    res = client.get("/w.js")
    assert res.content == b"/*! v2 */" and res.headers["etag"].startswith('"fedcba9876543210')
    assert client.get(f"/w.{HASH}.js", follow_redirects=False).status_code == 302


def test_missing_build_answers_503_with_what_to_do(tmp_path, caplog):
    with TestClient(Starlette(routes=routes(tmp_path / "nothing"))) as client:
        res = client.get("/w.js")
        assert res.status_code == 503 and "make install" in res.text
        assert res.headers["cache-control"] == "no-store"
        assert client.get(f"/w.{HASH}.js").status_code == 503
    assert "widget not built" in caplog.text
