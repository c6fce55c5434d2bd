"""CSRF defences of the admin pages.

- Every form carries a token: the session's own random token once logged in (compared in constant time on every
  state-changing request), or, on the login and setup forms, a token signed with the server's admin secret and
  valid for a few hours.
- The session cookie is SameSite=Strict, so a cross-site request carries no session at all.
- A POST whose Origin header names another host is refused, whatever it carries.
"""
from __future__ import annotations

import hashlib
import hmac
import time

from starlette.requests import Request

FORM_TOKEN_MAX_AGE_S = 4 * 3600
FIELD = "csrf"


def sign_form_token(secret: str, purpose: str, *, now: float | None = None) -> str:
    stamp = str(int(now if now is not None else time.time()))
    mac = hmac.new(secret.encode(), f"{purpose}.{stamp}".encode(), hashlib.sha256).hexdigest()
    return f"{stamp}.{mac}"


def check_form_token(secret: str, purpose: str, token: str | None, *, now: float | None = None) -> bool:
    if not token or token.count(".") != 1:
        return False
    stamp, mac = token.split(".")
    if not stamp.isdigit():
        return False
    age = (now if now is not None else time.time()) - int(stamp)
    if not 0 <= age <= FORM_TOKEN_MAX_AGE_S:
        return False
    expected = hmac.new(secret.encode(), f"{purpose}.{stamp}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, expected)


def check_session_token(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def same_origin(request: Request) -> bool:
    """False when the request says it comes from another site (Origin, else Referer); True when it does not
    say (non-browser clients) or names this host."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return True
    if origin == "null":
        return False
    host = request.headers.get("host", "")
    rest = origin.split("://", 1)[-1]
    return rest.split("/", 1)[0].lower() == host.lower()
