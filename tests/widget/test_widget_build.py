"""widget/build.py: the bundle is complete, minified, deterministic, and within the 8 KB gzip budget."""
from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build_module():
    spec = importlib.util.spec_from_file_location("widget_build_under_test", REPO / "widget" / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_widget_fits_the_size_budget(build_module):
    built = build_module.build()
    assert build_module.BUDGET_GZIP_BYTES == 8 * 1024
    assert built.gzip_bytes == len(gzip.compress(built.script, compresslevel=9, mtime=0))
    assert built.gzip_bytes <= 8 * 1024, f"widget is {built.gzip_bytes} bytes gzipped, budget 8192"


def test_bundle_inlines_the_stylesheet_and_is_minified(build_module):
    src = REPO / "widget" / "src"
    source = "".join((src / name).read_text() for name in build_module.PARTS)
    script = build_module.build().script.decode()
    assert "__CSS__" not in script
    assert ":host{" in script and "adoptedStyleSheets" in script
    assert len(script) < 0.9 * (len(source) + len((src / "carousel.css").read_text()))
    assert "// " not in script and "\n  " not in script               # comments and indentation gone
    assert script.startswith("/*! Upnext widget")                     # the licence line stays
    assert script.endswith("})(window,document);")                    # one scope, nothing global but upnext


def test_widget_never_touches_cookies_or_local_storage(build_module):
    script = build_module.build().script.decode()
    assert "localStorage" not in script and "cookie" not in script.lower()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script


def test_build_is_deterministic_and_the_manifest_describes_the_file(build_module, tmp_path):
    first, second = build_module.build(), build_module.build()
    assert first.script == second.script and first.hash == second.hash
    path = build_module.write(first, tmp_path / "static")
    manifest = json.loads((tmp_path / "static" / "w.json").read_text())
    data = path.read_bytes()
    assert data == first.script
    assert manifest["hash"] == hashlib.sha256(data).hexdigest()[:16]
    assert manifest["name"] == f"w.{manifest['hash']}.js"
    assert manifest["bytes"] == len(data) and manifest["gzip_bytes"] == first.gzip_bytes
    assert manifest["sri"] == "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()
    assert sorted(p.name for p in (tmp_path / "static").iterdir()) == ["w.js", "w.json"]   # no temp files


def test_over_budget_build_fails_with_the_sizes(build_module, tmp_path):
    with pytest.raises(build_module.OverBudget, match=r"widget is \d+ bytes gzipped, over the budget of 100"):
        build_module.build(budget=100)


def test_command_line_writes_the_files_and_fails_when_over_budget(build_module, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(REPO / "widget" / "build.py"), "--out", str(out)],
                          capture_output=True, text=True, check=True)
    assert "gzipped (budget 8192)" in done.stdout
    assert (out / "w.js").read_bytes() == build_module.build().script

    src = tmp_path / "src"
    shutil.copytree(REPO / "widget" / "src", src)
    (src / "start.js").write_text((src / "start.js").read_text() + "\n// pad\n" + "".join(
        f"var v{k}={k * 7919 % 100003};" for k in range(4000)))
    with pytest.raises(build_module.OverBudget):
        build_module.build(src)


def test_source_without_the_stylesheet_placeholder_is_refused(build_module, tmp_path):
    shutil.copytree(REPO / "widget" / "src", tmp_path / "src")
    js = tmp_path / "src" / "carousel.js"
    js.write_text(js.read_text().replace("'__CSS__'", "''"))
    with pytest.raises(ValueError, match="__CSS__"):
        build_module.build(tmp_path / "src")


@pytest.mark.parametrize("css, minified", [
    ("/* note */ .a  .b { color: red ; }", ".a .b{color:red}"),
    (".a { color : red }", ".a{color :red}"),       # a space before ":" may be a descendant combinator
    (".x { width: calc(100% - 2px); }", ".x{width:calc(100% - 2px)}"),
    ("@media (max-width: 480px) and (hover: none) {\n  .a > .b { gap: 1px; }\n}",
     "@media (max-width:480px) and (hover:none){.a>.b{gap:1px}}"),
    (".a :focus-visible, .b { outline: 0 }", ".a :focus-visible,.b{outline:0}"),
])
def test_css_minifier_keeps_the_meaningful_spaces(build_module, css, minified):
    assert build_module.minify_css(css) == minified
