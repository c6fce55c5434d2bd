"""Admin access: the login, first-visit setup and logout pages, and ``admin_view``, which guards every other
admin page (a live session; on POST a valid CSRF token and no foreign Origin).

The session cookie is the only cookie Upnext sets: ``upnext_admin``, HttpOnly, SameSite=Strict, Path=/admin
(Secure when the request came over HTTPS), holding a random token whose hash names a row of admin_sessions.
"""
from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from backend.access import credentials as creds_store
from backend.access.login_throttle import LoginThrottle
from backend.access.passwords import PasswordRejected, check_new_password
from backend.store.admin_credentials import load_credentials
from backend.store.admin_sessions import IDLE_MS, create_session, end_session, load_session
from backend.store.items import is_site_path
from backend.web.admin.csrf import FIELD, check_form_token, check_session_token, same_origin, sign_form_token
from backend.web.admin.render import error_page, page, redirect
from backend.web.http import services

COOKIE = "upnext_admin"
FORM_LIMITS = {"max_files": 1, "max_fields": 200}
LOGIN_FORM_LIMITS = {"max_files": 0, "max_fields": 10}
CSRF_FAILED = ("The form was out of date or did not come from this admin page, so nothing was changed "
               "(CSRF check). Go back, reload the page and try again.")
# scrypt takes ~100 ms and 32 MiB per password: off the event loop (other requests keep flowing), two at a time
# (the login throttle bounds how many can queue)
HASHING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="upnext-scrypt")


async def _hashing(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(HASHING, fn, *args)


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(COOKIE, token, max_age=IDLE_MS // 1000, path="/admin", httponly=True, samesite="strict",
                        secure=secure)


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/admin", httponly=True, samesite="strict")


async def current_session(request: Request):
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    return await run_in_threadpool(load_session, services(request).engine, token)


def admin_view(handler: Callable[[Request], Awaitable[Response]]):
    """Only for a logged-in admin; POSTs must carry the session's CSRF token (their form is parsed here and
    left in ``request.state.form``)."""
    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        session = await current_session(request)
        if session is None:
            if request.method in ("GET", "HEAD"):
                return redirect("/admin/login", next=request.url.path)
            return error_page(request, 403, "Logged out", "Your admin session has ended: log in again.")
        request.state.admin = session
        if request.method != "POST":
            return await handler(request)
        if not same_origin(request):
            return error_page(request, 403, "Refused", CSRF_FAILED)
        form = await request.form(**FORM_LIMITS)
        try:
            if not check_session_token(session.csrf_token, form.get(FIELD)):
                return error_page(request, 403, "Refused", CSRF_FAILED)
            request.state.form = form
            return await handler(request)
        finally:
            await form.close()            # uploaded files are spooled to disk
    return guarded


async def _credentials(request: Request):
    return await run_in_threadpool(load_credentials, services(request).engine)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/admin/") and is_site_path(target):
        return target
    return "/admin/"


async def login(request: Request) -> Response:
    svc = services(request)
    creds = await _credentials(request)
    source = creds_store.password_source(svc.settings, creds)
    if source == "unset":
        return redirect("/admin/setup")
    error, status = None, 200
    next_url = _safe_next(request.query_params.get("next"))
    if request.method == "POST":
        form = await request.form(**LOGIN_FORM_LIMITS)
        next_url = _safe_next(form.get("next"))
        if not same_origin(request) or not check_form_token(creds.secret, "login", form.get(FIELD)):
            return error_page(request, 403, "Refused", CSRF_FAILED)
        throttle = LoginThrottle(svc.engine, creds.secret)
        address = request.client.host if request.client else None
        verdict = await run_in_threadpool(throttle.attempt, address)       # counted before the check
        if not verdict.allowed:
            error, status = verdict.message, 429
        elif await _hashing(creds_store.check_password, svc.settings, creds, str(form.get("password", ""))):
            await run_in_threadpool(throttle.succeeded, address)
            token, _ = await run_in_threadpool(create_session, svc.engine)
            response = redirect(next_url)
            set_session_cookie(request, response, token)
            return response
        else:
            error, status = "Wrong password.", 401
    response = page(request, "login.html", {"error": error, "next": next_url,
                                            "form_token": sign_form_token(creds.secret, "login")}, status=status)
    if status == 429:
        response.headers["Retry-After"] = str(verdict.retry_after_s)
    return response


async def setup(request: Request) -> Response:
    """First visit: set the admin password, with the setup code the server wrote to its data folder."""
    svc = services(request)
    creds = await _credentials(request)
    if creds_store.password_source(svc.settings, creds) != "unset":
        return redirect("/admin/login")
    code_path = await run_in_threadpool(creds_store.ensure_setup_code, svc.engine, svc.settings)
    creds = await _credentials(request)
    error, status = None, 200
    if request.method == "POST":
        form = await request.form(**LOGIN_FORM_LIMITS)
        if not same_origin(request) or not check_form_token(creds.secret, "setup", form.get(FIELD)):
            return error_page(request, 403, "Refused", CSRF_FAILED)
        throttle = LoginThrottle(svc.engine, creds.secret)
        address = request.client.host if request.client else None
        verdict = await run_in_threadpool(throttle.attempt, address)       # counted before the check
        password, again = str(form.get("password", "")), str(form.get("password_again", ""))
        try:
            if not verdict.allowed:
                error, status = verdict.message, 429
            elif not creds_store.check_setup_code(creds, str(form.get("code", ""))):
                error, status = "That is not the setup code.", 401
            elif password != again:
                await run_in_threadpool(throttle.succeeded, address)
                error, status = "The two passwords differ.", 400
            else:
                await run_in_threadpool(throttle.succeeded, address)
                check_new_password(password)
                await _hashing(creds_store.finish_setup, svc.engine, svc.settings, password)
                token, _ = await run_in_threadpool(create_session, svc.engine)
                response = redirect("/admin/", "password-set")
                set_session_cookie(request, response, token)
                return response
        except PasswordRejected as exc:
            error, status = str(exc).capitalize() + ".", 400
    # the file's name only: the page is for anonymous visitors, who need not learn where the data folder is
    return page(request, "setup.html", {"error": error, "code_file": code_path.name if code_path else "",
                                        "form_token": sign_form_token(creds.secret, "setup")}, status=status)


@admin_view
async def logout(request: Request) -> Response:
    await run_in_threadpool(end_session, services(request).engine, request.state.admin.token_hash)
    response = redirect("/admin/login", "logged-out")
    clear_session_cookie(response)
    return response


async def change_password(request: Request, current: str, new: str, again: str) -> str | None:
    """The settings page's password form; returns an error message, or None when the password was changed
    (every session ends; the caller logs this browser in again)."""
    svc = services(request)
    creds = await _credentials(request)
    if creds_store.password_source(svc.settings, creds) == "env":
        return "The password comes from UPNEXT_ADMIN_PASSWORD: change it there."
    throttle = LoginThrottle(svc.engine, creds.secret)        # guesses here count as failed logins
    address = request.client.host if request.client else None
    verdict = await run_in_threadpool(throttle.attempt, address)           # counted before the check
    if not verdict.allowed:
        return verdict.message
    if not await _hashing(creds_store.check_password, svc.settings, creds, current):
        return "The current password is wrong."
    await run_in_threadpool(throttle.succeeded, address)
    if new != again:
        return "The two new passwords differ."
    try:
        check_new_password(new)
    except PasswordRejected as exc:
        return str(exc).capitalize() + "."
    await _hashing(creds_store.set_password, svc.engine, new)
    return None
