"""The settings page: retention and the session-state memory budget (stored overrides of the UPNEXT_* defaults,
applied by every server process within seconds), the admin password, and the other settings for reference."""
from __future__ import annotations

import os

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from backend.access import credentials as creds_store
from backend.settings import SettingsError
from backend.store.admin_credentials import load_credentials
from backend.store.admin_sessions import create_session
from backend.store.app_settings import EDITABLE, load_overrides, save_override, validate
from backend.store.db import hide_password
from backend.web.admin import auth
from backend.web.admin.render import all_sites, page, redirect
from backend.web.http import services


async def _render(request: Request, *, errors: dict | None = None, password_error: str | None = None,
                  values: dict | None = None, status: int = 200) -> Response:
    svc = services(request)
    overrides = await run_in_threadpool(load_overrides, svc.engine)
    creds = await run_in_threadpool(load_credentials, svc.engine)
    base = svc.admin.settings.base
    rows = [{"field": e, "default": getattr(base, e.name), "current": getattr(svc.settings, e.name),
             "override": (values or {}).get(e.name, overrides.get(e.name, "")),
             "error": (errors or {}).get(e.name)} for e in EDITABLE]
    editable = {e.name for e in EDITABLE}
    others = [(var, hide_password(value) if var == "UPNEXT_DATABASE_URL" else value, help)
              for var, value, help in svc.settings.describe()
              if var.removeprefix("UPNEXT_").lower() not in editable]
    return page(request, "settings.html", {
        "title": "Settings", "active": "settings", "sites": await all_sites(request), "rows": rows,
        "others": others, "password_source": creds_store.password_source(svc.settings, creds),
        "password_error": password_error, "pid": os.getpid()}, status=status)


@auth.admin_view
async def settings_page(request: Request) -> Response:
    return await _render(request)


@auth.admin_view
async def save(request: Request) -> Response:
    form = request.state.form
    svc = services(request)
    values = {e.name: str(form.get(e.name, "")).strip() for e in EDITABLE}
    errors = {}
    for name, raw in values.items():
        if raw:
            try:
                validate(name, raw)
            except SettingsError as exc:
                errors[name] = str(exc).replace(f"UPNEXT_{name.upper()} must", "must")
    if errors:
        return await _render(request, errors=errors, values=values, status=400)
    for name, raw in values.items():
        await run_in_threadpool(save_override, svc.engine, name, raw or None)
    await run_in_threadpool(svc.admin.apply_settings)
    return redirect("/admin/settings", "settings-saved")


@auth.admin_view
async def change_password(request: Request) -> Response:
    form = request.state.form
    error = await auth.change_password(request, str(form.get("current", "")), str(form.get("password", "")),
                                       str(form.get("password_again", "")))
    if error:
        return await _render(request, password_error=error, status=400)
    token, _ = await run_in_threadpool(create_session, services(request).engine)   # this browser stays in
    response = redirect("/admin/settings", "password-set")
    auth.set_session_cookie(request, response, token)
    return response
