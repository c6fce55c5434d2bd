"""Settings changed on the admin page: stored in ``app_settings`` as overrides of the ``UPNEXT_*`` defaults.

The environment gives each setting its default; an override in the database wins. Every server process polls
the overrides (``SettingsPoller``, every few seconds) and applies what changed: the retention purge reads the
new number of days at its next round, and the session-state memory budget is resized at once.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, select, update

from backend.clock import now_ms
from backend.settings import Settings, SettingsError
from backend.store.tables import AppSetting

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Editable:
    name: str            # the Settings field
    label: str
    unit: str
    help: str


EDITABLE = (
    Editable("retention_days", "Retention", "days",
             "Events older than this are deleted by the purge (it runs every UPNEXT_PURGE_INTERVAL_S)."),
    Editable("state_mb", "Session-state memory", "MiB per server process",
             "In-memory GRU states of active sessions; when full, the least recently used sessions are "
             "dropped (their next request rebuilds them from the history the widget sends)."),
)
EDITABLE_NAMES = frozenset(e.name for e in EDITABLE)


def validate(name: str, raw: Any) -> Any:
    """The typed value of an override, or SettingsError naming the UPNEXT_ variable and its range."""
    if name not in EDITABLE_NAMES:
        raise SettingsError(f"{name} cannot be changed on the admin page")
    return getattr(Settings.from_env({}, **{name: raw}), name)


def load_overrides(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(select(AppSetting.name, AppSetting.value)).all()
    return {r.name: r.value for r in rows if r.name in EDITABLE_NAMES}


def save_override(engine: Engine, name: str, raw: Any) -> Any:
    """Store an override (validated); ``None`` or an empty string removes it (back to the default)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if name not in EDITABLE_NAMES:
            raise SettingsError(f"{name} cannot be changed on the admin page")
        with engine.begin() as conn:
            conn.execute(delete(AppSetting).where(AppSetting.name == name))
        return None
    value = validate(name, raw)
    with engine.begin() as conn:
        n = conn.execute(update(AppSetting).where(AppSetting.name == name)
                         .values(value=value, updated_ms=now_ms())).rowcount
        if not n:
            conn.execute(AppSetting.__table__.insert().values(name=name, value=value, updated_ms=now_ms()))
    return value


def effective(base: Settings, overrides: dict[str, Any]) -> Settings:
    """``base`` (from the environment) with the valid overrides applied; an invalid stored value is skipped."""
    changes = {}
    for name, raw in overrides.items():
        try:
            changes[name] = validate(name, raw)
        except SettingsError as exc:
            log.warning("stored setting ignored", extra={"setting": name, "reason": str(exc)})
    return dataclasses.replace(base, **changes) if changes else base


def apply_state_budget(models, budget_bytes: int) -> None:
    """Resize the session-state budget of a running ModelRegistry, shared evenly by the sites with a live model."""
    models.set_state_budget(int(budget_bytes))


class SettingsPoller:
    """Effective settings of this process: the environment's plus the stored overrides."""

    def __init__(self, base: Settings):
        self.base = base
        self.current = base

    def poll(self, engine: Engine) -> tuple[Settings, set[str]]:
        """Re-read the overrides; returns (effective settings, names of the fields that changed)."""
        new = effective(self.base, load_overrides(engine))
        changed = {f.name for f in dataclasses.fields(Settings) if getattr(new, f.name) != getattr(self.current, f.name)}
        self.current = new
        return new, changed
