"""``GET /w.js`` and ``GET /w.<hash>.js``: the built widget (static/w.js and static/w.json, made by
widget/build.py at ``make install``).

- ``/w.js`` is what the snippet loads: cached briefly (5 minutes), then revalidated with its ETag (the
  content hash), so a new widget reaches every site within minutes of a deploy.
- ``/w.<hash>.js`` is the same bytes under an immutable URL (cached for a year); an outdated hash redirects
  to ``/w.js`` so a page that pinned an old version keeps working.
Both are served gzipped when the client accepts it, readable cross-origin (``integrity=`` works with
``crossorigin="anonymous"``). The files are re-read when they change on disk, so a rebuild needs no restart.
"""
from __future__ import annotations

import gzip
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from backend.settings import resource_dir

log = logging.getLogger(__name__)

DEFAULT_STATIC = resource_dir("static")
SHORT_CACHE = "public, max-age=300, must-revalidate"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class WidgetFile:
    script: bytes
    gzipped: bytes
    hash: str


class WidgetFiles:
    """The built widget, read from ``static_dir`` and re-read when w.js or w.json change (mtime, size)."""

    def __init__(self, static_dir: Path):
        self.script_path, self.manifest_path = static_dir / "w.js", static_dir / "w.json"
        self._stamp: tuple | None = None
        self._file: WidgetFile | None = None
        self._lock = threading.Lock()

    def current(self) -> WidgetFile | None:
        """The widget as built now, or None when it has not been built."""
        try:
            stamp = tuple((s.st_mtime_ns, s.st_size) for s in (self.script_path.stat(), self.manifest_path.stat()))
        except FileNotFoundError:
            return None
        with self._lock:
            if stamp != self._stamp:
                script = self.script_path.read_bytes()
                digest = json.loads(self.manifest_path.read_text())["hash"]
                self._file = WidgetFile(script, gzip.compress(script, compresslevel=9, mtime=0), digest)
                self._stamp = stamp
            return self._file


def _etag_matches(header: str | None, etags: tuple[str, ...]) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    sent = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return any(tag in sent for tag in etags)


def _serve(request: Request, widget: WidgetFile, cache_control: str) -> Response:
    identity_tag, gzip_tag = f'"{widget.hash}"', f'"{widget.hash}-gz"'
    use_gzip = "gzip" in request.headers.get("accept-encoding", "").lower()
    headers = {"ETag": gzip_tag if use_gzip else identity_tag, "Cache-Control": cache_control,
               "Vary": "Accept-Encoding", "Access-Control-Allow-Origin": "*",
               "Cross-Origin-Resource-Policy": "cross-origin", "X-Content-Type-Options": "nosniff"}
    if _etag_matches(request.headers.get("if-none-match"), (identity_tag, gzip_tag)):
        return Response(status_code=304, headers=headers)
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
    return Response(widget.gzipped if use_gzip else widget.script, headers=headers,
                    media_type="text/javascript; charset=utf-8")


def _note_page(request: Request) -> None:
    """For the install check: the origin of the page loading the script (its Referer; browsers send at least the
    origin cross-site) counts for the sites that list that origin. The script URL carries no key."""
    svc = getattr(request.app.state, "services", None)
    referer = request.headers.get("referer")
    if svc is None or not referer:
        return
    parts = urlsplit(referer)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return
    origin = f"{parts.scheme}://{parts.netloc.lower()}"
    for site in svc.sites.sites_naming(origin):
        svc.origins.note(site.id, "script", origin)


def routes(static_dir: Path | None = None) -> list[Route]:
    """Routes serving the widget built into ``static_dir`` (default: the repository's static/)."""
    files = WidgetFiles(static_dir or DEFAULT_STATIC)

    def built() -> WidgetFile | None:
        widget = files.current()
        if widget is None:
            log.error("widget not built", extra={"path": str(files.script_path)})
        return widget

    def not_built() -> Response:
        return PlainTextResponse("widget not built: run `make install` (or python widget/build.py)",
                                 status_code=503, headers={"Cache-Control": "no-store", "Retry-After": "60"})

    async def widget_script(request: Request) -> Response:
        _note_page(request)
        widget = built()
        return _serve(request, widget, SHORT_CACHE) if widget else not_built()

    async def widget_script_pinned(request: Request) -> Response:
        widget = built()
        if widget is None:
            return not_built()
        if request.path_params["hash"] != widget.hash:
            return RedirectResponse("w.js", status_code=302, headers={"Cache-Control": "no-cache"})
        return _serve(request, widget, IMMUTABLE_CACHE)

    return [
        Route("/w.js", widget_script, methods=["GET", "HEAD"]),
        Route("/w.{hash:str}.js", widget_script_pinned, methods=["GET", "HEAD"]),
    ]
