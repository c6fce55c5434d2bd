"""The catalogue page: search, availability switches, and imports of CSV or JSON lines files with a report of
the rows that were refused and why (backend/store/importer.py).

An import copies its upload into the data folder's ``uploads/`` (Settings.upload_dir), holding an exclusive lock on
the copy until it is deleted; a server killed mid-import leaves its copy there, and the next start removes every
copy that no live import holds (``remove_leftover_uploads``, called from the app's lifespan)."""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from backend.store.importer import ImportFileError, import_items
from backend.item_features import price_deciles, readable_tokens
from backend.store.item_search import PAGE_SIZE, search_items, site_prices
from backend.store.items import set_available
from backend.web.admin.auth import admin_view
from backend.web.admin.render import error_page, page, redirect, site_or_404, site_url
from backend.web.http import services

log = logging.getLogger(__name__)

UPLOAD_MAX_BYTES = 256 << 20
UPLOAD_PREFIX = "import-"
REPORT_ROWS = 200
FORMATS = {"": None, "csv": "csv", "jsonl": "jsonl"}


async def _render(request: Request, site: dict, sites: list, *, report=None, import_error: str | None = None,
                  status: int = 200) -> Response:
    q = request.query_params.get("q", "")[:200]
    try:
        page_no = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        page_no = 1
    rows, total = await run_in_threadpool(search_items, services(request).engine, site["id"], q,
                                          offset=(page_no - 1) * PAGE_SIZE)
    edges = price_deciles({"price": p} for p in await run_in_threadpool(site_prices, services(request).engine,
                                                                        site["id"]))
    features = {r.id: readable_tokens(r._asdict(), edges) for r in rows}
    return page(request, "catalog.html", {
        "title": f"Catalogue of {site['name']}", "site": site, "sites": sites, "active": "catalog", "q": q,
        "rows": rows, "features": features, "total": total, "page_no": page_no, "pages": max(1, -(-total // PAGE_SIZE)),
        "report": report, "report_rows": REPORT_ROWS, "import_error": import_error}, status=status)


@admin_view
async def catalog_page(request: Request) -> Response:
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    return await _render(request, site, sites)


@admin_view
async def import_file(request: Request) -> Response:
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    form = request.state.form
    upload = form.get("file")
    fmt = FORMATS.get(str(form.get("format", "")), None)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _render(request, site, sites, import_error="Choose a CSV or JSON lines file.", status=400)
    suffix = Path(upload.filename).suffix.lower()[:10]
    fd, tmp = await run_in_threadpool(_locked_copy, upload.file, services(request).settings.upload_dir, suffix)
    try:
        engine = services(request).engine
        report = await run_in_threadpool(import_items, engine, site["id"], tmp, fmt=fmt)
    except ImportFileError as exc:
        message = str(exc).replace(tmp.name, upload.filename)
        return await _render(request, site, sites, import_error=message, status=400)
    finally:
        tmp.unlink(missing_ok=True)
        os.close(fd)                      # releases the lock
    await run_in_threadpool(services(request).catalog.refresh)
    return await _render(request, site, sites, report=report)


@admin_view
async def availability(request: Request) -> Response:
    site, sites, missing = await site_or_404(request)
    if missing:
        return missing
    form = request.state.form
    item_id, available = str(form.get("item", "")), form.get("available") == "1"
    found = await run_in_threadpool(set_available, services(request).engine, site["id"], item_id, available)
    if not found:
        return error_page(request, 404, "No such item", "That item is not in the catalogue (any more).")
    await run_in_threadpool(services(request).catalog.refresh)
    back = {k: v for k in ("q", "page") if (v := str(form.get(k, "")))}
    return redirect(site_url(site, "catalog"), "availability-saved", item_id, **back)


def _locked_copy(source: BinaryIO, folder: Path, suffix: str) -> tuple[int, Path]:
    """Copy an upload to a new file in ``folder``, locked (flock) until the returned descriptor is closed."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=UPLOAD_PREFIX, suffix=suffix, dir=folder)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with open(fd, "wb", closefd=False) as out:
            shutil.copyfileobj(source, out)
    except BaseException:
        os.unlink(name)
        os.close(fd)
        raise
    return fd, Path(name)


def remove_leftover_uploads(folder: Path) -> int:
    """At start-up: delete the copies of uploads that no import holds (left by a server killed mid-import) and
    return how many. A copy locked by a live import (another worker) is kept, and so is one younger than this call
    (its lock may follow its creation by a moment)."""
    if not folder.is_dir():
        return 0
    started, removed = time.time(), 0
    for path in folder.glob(UPLOAD_PREFIX + "*"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            if os.fstat(fd).st_mtime < started - 1:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink(missing_ok=True)
                removed += 1
        except BlockingIOError:
            pass                          # a live import holds it
        finally:
            os.close(fd)
    if removed:
        log.info("removed %d upload(s) left by an interrupted import from %s", removed, folder)
    return removed
