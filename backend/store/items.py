"""The catalogue: validation of item records (api.md), upserts and deletes, one site at a time."""
from __future__ import annotations

import json
import re
from typing import Any, Iterable

from sqlalchemy import Connection, Engine, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from backend.clock import now_ms
from backend.errors import UpnextError
from backend.item_ids import DESCRIPTION, valid_id
from backend.store.tables import Item, Site

FIELDS = ("id", "title", "url", "image", "price", "currency", "category", "available", "attributes")
TITLE_MAX, URL_MAX, CATEGORY_MAX, ATTRIBUTES_MAX = 1000, 2048, 256, 16 * 1024
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
TRUE_WORDS, FALSE_WORDS = {"true", "1", "yes", "y"}, {"false", "0", "no", "n"}


class ItemInvalid(UpnextError, ValueError):
    """One record cannot be stored; ``problems`` are (field, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))
        self.problems = problems


def _plain(value: str) -> bool:
    """No backslash, whitespace or control character: browsers read ``\\`` as ``/`` and drop tabs and line
    breaks, so ``/\\evil.example`` and ``/<tab>/evil.example`` would lead to another site."""
    return "\\" not in value and not any(c.isspace() or not c.isprintable() for c in value)


def is_site_path(value: str) -> bool:
    """A path on this site (``/p/1``), never a protocol-relative or disguised link to another one."""
    return value.startswith("/") and not value.startswith("//") and _plain(value)


def _link(value: Any) -> str | None:
    """http(s) or site-relative links only: a ``javascript:`` URL in a catalogue must never reach a page, nor a
    path that browsers would read as another site's."""
    if not isinstance(value, str) or len(value) > URL_MAX:
        return f"must be a string of at most {URL_MAX} characters"
    value = value.strip()
    if not _plain(value):
        return "must not contain spaces, tabs, line breaks, backslashes or control characters (encode a space as %20)"
    if value.lower().startswith(("http://", "https://")) or is_site_path(value):
        return None
    return "must start with http://, https:// or / (a path on the site)"


def clean_item(record: Any, *, coerce_text: bool = False) -> dict[str, Any]:
    """Validate one catalogue record and return the row to store, or raise ItemInvalid.

    ``coerce_text``: values come from a CSV file (all strings): numbers and booleans are parsed.
    """
    if not isinstance(record, dict):
        raise ItemInvalid([("$", "must be an object")])
    problems: list[tuple[str, str]] = []
    for name in record:
        if name not in FIELDS:
            problems.append((str(name)[:60], "unknown field (put custom fields under attributes)"))
    row: dict[str, Any] = {}
    item_id = record.get("id")
    if isinstance(item_id, (int,)) and not isinstance(item_id, bool):
        item_id = str(item_id)
    if not valid_id(item_id):
        problems.append(("id", f"required: {DESCRIPTION}"))
    row["id"] = item_id
    title = record.get("title", "")
    if title is None:
        title = ""
    if not isinstance(title, str) or len(title) > TITLE_MAX:
        problems.append(("title", f"must be text of at most {TITLE_MAX} characters"))
    row["title"] = title
    for name in ("url", "image"):
        value = record.get(name)
        if value in (None, ""):
            row[name] = None
        elif (msg := _link(value)):
            problems.append((name, msg))
        else:
            row[name] = value.strip()
    price = record.get("price")
    if price in (None, ""):
        row["price"] = None
    else:
        try:
            price = float(price) if coerce_text and isinstance(price, str) else price
        except ValueError:
            pass
        if not isinstance(price, (int, float)) or isinstance(price, bool) or not 0 <= price <= 1e12:
            problems.append(("price", "must be a non-negative number"))
        row["price"] = price
    currency = record.get("currency")
    if currency in (None, ""):
        row["currency"] = None
    elif not isinstance(currency, str) or not CURRENCY_RE.match(currency):
        problems.append(("currency", "must be an ISO 4217 code such as EUR"))
    else:
        row["currency"] = currency
    category = record.get("category")
    if category in (None, ""):
        row["category"] = None
    elif not isinstance(category, str) or len(category) > CATEGORY_MAX:
        problems.append(("category", f"must be text of at most {CATEGORY_MAX} characters"))
    else:
        row["category"] = category
    available = record.get("available", True)
    if coerce_text and isinstance(available, str):
        word = available.strip().lower()
        available = True if word in TRUE_WORDS or word == "" else False if word in FALSE_WORDS else available
    if not isinstance(available, bool):
        problems.append(("available", "must be true or false"))
    row["available"] = available
    attributes = record.get("attributes") or {}
    if not isinstance(attributes, dict):
        problems.append(("attributes", "must be an object"))
    elif len(json.dumps(attributes, ensure_ascii=False)) > ATTRIBUTES_MAX:
        problems.append(("attributes", f"must be at most {ATTRIBUTES_MAX // 1024} KiB as JSON"))
    row["attributes"] = attributes
    if problems:
        raise ItemInvalid(problems)
    return row


def upsert_items(conn: Connection, site_id: int, rows: Iterable[dict[str, Any]]) -> int:
    """Insert or replace items by (site, id) inside the caller's transaction; returns the row count."""
    stamp = now_ms()
    values = [{**r, "site_id": site_id, "updated_ms": stamp} for r in rows]
    if not values:
        return 0
    dialect = conn.dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Item)
    update = {c: getattr(ins.excluded, c) for c in FIELDS if c != "id"} | {"updated_ms": ins.excluded.updated_ms}
    conn.execute(ins.on_conflict_do_update(index_elements=["site_id", "id"], set_=update), values)
    bump_catalog_version(conn, site_id)
    return len(values)


def save_items(engine: Engine, site_id: int, rows: Iterable[dict[str, Any]]) -> int:
    """``upsert_items`` in a transaction of its own."""
    with engine.begin() as conn:
        return upsert_items(conn, site_id, rows)


def bump_catalog_version(conn: Connection, site_id: int) -> None:
    """Tell every server process (they poll the version) that this site's catalogue changed."""
    conn.execute(Site.__table__.update().where(Site.id == site_id)
                 .values(catalog_version=Site.catalog_version + 1))


def delete_item(engine: Engine, site_id: int, item_id: str) -> bool:
    with engine.begin() as conn:
        found = conn.execute(delete(Item).where(Item.site_id == site_id, Item.id == item_id)).rowcount > 0
        if found:
            bump_catalog_version(conn, site_id)
        return found


def set_available(engine: Engine, site_id: int, item_id: str, available: bool) -> bool:
    with engine.begin() as conn:
        found = conn.execute(Item.__table__.update().where(Item.site_id == site_id, Item.id == item_id)
                             .values(available=available, updated_ms=now_ms())).rowcount > 0
        if found:
            bump_catalog_version(conn, site_id)
        return found


def catalog_versions(engine: Engine) -> dict[int, int]:
    """site id -> its catalogue version (bumped by every catalogue write)."""
    with engine.connect() as conn:
        return dict(conn.execute(select(Site.id, Site.catalog_version)).all())


def catalog_rows(engine: Engine, site_id: int) -> list:
    """Every item of a site with the fields serving needs (rows with attribute access)."""
    with engine.connect() as conn:
        return conn.execute(select(Item.id, Item.title, Item.url, Item.image, Item.price, Item.currency,
                                   Item.category, Item.available, Item.attributes, Item.updated_ms)
                            .where(Item.site_id == site_id)).all()


def count_items(engine: Engine, site_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Item).where(Item.site_id == site_id)).scalar_one()


def feature_records(engine: Engine, site_id: int) -> list[dict[str, Any]]:
    """Every item of a site as a catalogue record with what item features are built from (backend/item_features.py):
    id, title, price, category, attributes."""
    with engine.connect() as conn:
        rows = conn.execute(select(Item.id, Item.title, Item.price, Item.category, Item.attributes)
                            .where(Item.site_id == site_id).order_by(Item.id)).all()
    return [{"id": r.id, "title": r.title, "price": r.price, "category": r.category,
             "attributes": r.attributes or {}} for r in rows]
