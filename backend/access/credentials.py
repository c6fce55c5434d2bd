"""The admin password and the server's admin secret, in the ``admin_credentials`` row (id 1,
backend/store/admin_credentials.py).

Where the password comes from:
- ``UPNEXT_ADMIN_PASSWORD`` when set (compared in constant time; the page cannot change it), else
- a password set on the admin page, stored as a scrypt hash (passwords.py).
Until one is set, the first visitor of /admin sets it, but only with the one-time setup code the server
writes to ``<data_dir>/admin-setup-code`` (and names in its log): a stranger who finds the server first cannot
take it over. The secret (random, made once) signs the login forms' CSRF tokens and keys the hashes of client
addresses kept for login throttling.
"""
from __future__ import annotations

import hashlib
import logging
import os
import secrets
from pathlib import Path

from backend.access.passwords import check_new_password, hash_password, same_secret, verify_password
from backend.settings import Settings
from backend.store.admin_credentials import Credentials, load_credentials, replace_setup_code_hash, save_password_hash
from backend.store.db import Engine

log = logging.getLogger(__name__)

SETUP_CODE_FILE = "admin-setup-code"


def password_source(settings: Settings, creds: Credentials) -> str:
    """"env" (UPNEXT_ADMIN_PASSWORD), "stored" (set on the admin page) or "unset" (the setup page is open)."""
    if settings.admin_password:
        return "env"
    return "stored" if creds.password_hash else "unset"


def check_password(settings: Settings, creds: Credentials, password: str) -> bool:
    if settings.admin_password:
        return same_secret(password, settings.admin_password)
    return bool(creds.password_hash) and verify_password(password, creds.password_hash)


def set_password(engine: Engine, password: str) -> None:
    """Store a new password hash and end every admin session (all browsers must log in again)."""
    check_new_password(password)
    save_password_hash(engine, hash_password(password))


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode("utf-8")).hexdigest()


def ensure_setup_code(engine: Engine, settings: Settings) -> Path | None:
    """When no password is set: make sure a setup code exists and its file on this host holds it; returns the
    file's path (None when a password is set). Processes racing at start-up converge on one code: each writes its
    file only after winning a compare-and-set on the stored hash, and checks the pair again afterwards."""
    path = settings.data_dir / SETUP_CODE_FILE
    for _ in range(5):
        creds = load_credentials(engine)
        if password_source(settings, creds) != "unset":
            return None
        if creds.setup_code_hash and path.exists() and _code_hash(path.read_text()) == creds.setup_code_hash:
            break
        code = secrets.token_urlsafe(16)
        if replace_setup_code_hash(engine, creds.setup_code_hash, _code_hash(code)):
            _write_private(path, code + "\n")
    log.warning("admin password not set: open /admin/ and enter the setup code from %s", path)
    return path


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def check_setup_code(creds: Credentials, code: str) -> bool:
    return bool(creds.setup_code_hash) and same_secret(_code_hash(code), creds.setup_code_hash)


def finish_setup(engine: Engine, settings: Settings, password: str) -> None:
    """Store the first password and delete the setup code (its file too)."""
    set_password(engine, password)
    (settings.data_dir / SETUP_CODE_FILE).unlink(missing_ok=True)
