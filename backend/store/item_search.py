"""Catalogue search for the admin page: by id or title (case-insensitive substring), newest first."""
from __future__ import annotations

from sqlalchemy import Engine, func, or_, select

from backend.store.tables import Item

PAGE_SIZE = 50


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_items(engine: Engine, site_id: int, query: str = "", *, limit: int = PAGE_SIZE,
                 offset: int = 0) -> tuple[list, int]:
    """(rows of one page, number of matches); an empty query lists the whole catalogue."""
    where = [Item.site_id == site_id]
    query = query.strip()
    if query:
        pattern = _like(query)
        where.append(or_(Item.id.ilike(pattern, escape="\\"), Item.title.ilike(pattern, escape="\\")))
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(Item).where(*where)).scalar_one()
        rows = conn.execute(select(Item.id, Item.title, Item.url, Item.category, Item.price, Item.currency,
                                   Item.available, Item.updated_ms, Item.attributes).where(*where)
                            .order_by(Item.updated_ms.desc(), Item.id).limit(limit).offset(offset)).all()
    return rows, int(total)


def site_prices(engine: Engine, site_id: int) -> list[float]:
    """Every positive price of a site's catalogue (its price deciles: backend/item_features.py)."""
    with engine.connect() as conn:
        return [float(p) for (p,) in conn.execute(select(Item.price).where(Item.site_id == site_id,
                                                                           Item.price > 0))]
