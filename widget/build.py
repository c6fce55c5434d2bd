"""Build the widget: the parts in widget/src joined in one function scope, carousel.css inlined, the server's
rule for item ids (backend/item_ids.py) written in as a regular expression, minified (rjsmin, pinned in pyproject),
written to static/w.js with static/w.json beside it ({"hash", "bytes", "gzip_bytes", "sri", "name"}).

    python widget/build.py [--out DIR]

Fails (exit 1) when the minified, gzipped script is over the size budget (8 KB). Deterministic: the same
sources give the same bytes, so the content hash only changes when the widget does.
"""
from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import rjsmin

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:       # run as a script (python widget/build.py): the backend package is beside us
    sys.path.insert(0, str(REPO))
from backend.item_ids import js_pattern  # noqa: E402 (after the path above)

SRC = Path(__file__).resolve().parent / "src"
PARTS = ("core.js", "events.js", "carousel.js", "start.js")      # in this order: later parts use earlier ones
HEADER = "/*! Upnext widget: recommendation carousels and visit events (api.md). Apache-2.0 */\n"
DEFAULT_OUT = REPO / "static"
BUDGET_GZIP_BYTES = 8 * 1024
CSS_PLACEHOLDER = "'__CSS__'"
ID_RE_PLACEHOLDER = "'__ID_RE__'"


class OverBudget(Exception):
    pass


@dataclass(frozen=True)
class Built:
    script: bytes        # the minified widget, UTF-8
    hash: str            # first 16 hex digits of its SHA-256: the ETag and the immutable URL /w.<hash>.js
    gzip_bytes: int      # its size gzipped at level 9, what the budget limits

    def manifest(self) -> dict:
        digest = base64.b64encode(hashlib.sha384(self.script).digest()).decode()
        return {"name": f"w.{self.hash}.js", "hash": self.hash, "bytes": len(self.script),
                "gzip_bytes": self.gzip_bytes, "sri": f"sha384-{digest}"}


def minify_css(css: str) -> str:
    """Comments and layout whitespace removed. Spaces that carry meaning (descendant selectors,
    ``calc(a + b)``, ``and (`` in media queries) are kept: only those beside { } ; , > and after : go."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    css = re.sub(r"\s+", " ", css)
    css = re.sub(r"\s*([{};,>])\s*", r"\1", css)
    css = re.sub(r":\s+", ":", css)
    return css.replace(";}", "}").strip()


def bundle(parts: list[str], css: str) -> str:
    """The parts joined inside one strict-mode function scope, with the stylesheet inlined as a string and the
    item id rule as a regular expression literal."""
    js = "".join(parts)
    if js.count(CSS_PLACEHOLDER) != 1:
        raise ValueError(f"widget source must contain {CSS_PLACEHOLDER} exactly once")
    if js.count(ID_RE_PLACEHOLDER) != 1:
        raise ValueError(f"widget source must contain {ID_RE_PLACEHOLDER} exactly once")
    js = js.replace(CSS_PLACEHOLDER, json.dumps(minify_css(css))).replace(ID_RE_PLACEHOLDER, js_pattern())
    return HEADER + "(function (w, d) {\n'use strict';\n" + js + "})(window, document);\n"


def build(src: Path = SRC, budget: int = BUDGET_GZIP_BYTES) -> Built:
    """Bundle and minify the sources in ``src``; OverBudget when the gzipped result exceeds ``budget`` bytes."""
    parts = [(src / name).read_text(encoding="utf-8") for name in PARTS]
    css = (src / "carousel.css").read_text(encoding="utf-8")
    script = rjsmin.jsmin(bundle(parts, css), keep_bang_comments=True).encode("utf-8")
    gz = len(gzip.compress(script, compresslevel=9, mtime=0))
    if gz > budget:
        raise OverBudget(f"widget is {gz} bytes gzipped, over the budget of {budget} bytes")
    return Built(script=script, hash=hashlib.sha256(script).hexdigest()[:16], gzip_bytes=gz)


def write(built: Built, out: Path) -> Path:
    """Write w.js then w.json into ``out`` (each atomically: a server never reads half a file)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, data in (("w.js", built.script),
                       ("w.json", (json.dumps(built.manifest(), indent=2) + "\n").encode())):
        tmp = out / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(out / name)
    return out / "w.js"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: static/)")
    args = parser.parse_args(argv)
    try:
        built = build()
    except OverBudget as exc:
        print(f"widget build failed: {exc}", file=sys.stderr)
        return 1
    path = write(built, args.out)
    print(f"widget: {path} {len(built.script)} bytes, {built.gzip_bytes} gzipped "
          f"(budget {BUDGET_GZIP_BYTES}), hash {built.hash}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
