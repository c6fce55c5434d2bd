"""Catalogue import from CSV or JSON lines files: validated, upserted in batches, rejected rows reported.

Each batch is one transaction, so a crash leaves whole batches stored and nothing half-written; running the
same import again upserts the same rows, so an interrupted import is finished by running it again.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy import Engine

from backend.store.items import FIELDS, ItemInvalid, clean_item, upsert_items
from backend.errors import UpnextError

BATCH_ROWS = 1000
ATTRIBUTE_PREFIX = "attributes."


class ImportFileError(UpnextError, ValueError):
    """The file as a whole cannot be read (unknown format, bad CSV header, not UTF-8)."""


@dataclass
class Rejected:
    line: int
    item_id: str | None
    problems: list[tuple[str, str]]

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "id": self.item_id,
                "problems": [{"field": f, "message": m} for f, m in self.problems]}


@dataclass
class ImportReport:
    read: int = 0
    stored: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    def as_json(self, max_rejected: int = 1000) -> dict[str, Any]:
        return {"read": self.read, "stored": self.stored, "rejected": len(self.rejected),
                "rejected_rows": [r.as_json() for r in self.rejected[:max_rejected]]}


def detect_format(path: Path, fmt: str | None = None) -> str:
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt in ("csv",):
        return "csv"
    if fmt in ("jsonl", "ndjson", "json"):
        return "jsonl"
    raise ImportFileError(f"{path.name}: cannot tell the format from the name; use --format csv or jsonl")


def _csv_records(stream: io.TextIOBase) -> Iterator[tuple[int, Any]]:
    reader = csv.DictReader(stream)
    header = reader.fieldnames or []
    bad = [h for h in header if h not in FIELDS and not h.startswith(ATTRIBUTE_PREFIX)]
    if bad or "id" not in header:
        raise ImportFileError(f"CSV header must name id and any of {', '.join(FIELDS[1:-1])} or "
                              f"attributes.<name> columns; unknown: {', '.join(bad) or '-'}"
                              + ("" if "id" in header else "; missing: id"))
    for row in reader:
        record: dict[str, Any] = {}
        attributes = {}
        for key, value in row.items():
            if key is None:  # more cells than header columns
                record["_extra_cells"] = value
            elif key.startswith(ATTRIBUTE_PREFIX):
                if value not in (None, ""):
                    attributes[key[len(ATTRIBUTE_PREFIX):]] = value
            else:
                record[key] = value
        if attributes:
            record["attributes"] = attributes
        yield reader.line_num, record


def _jsonl_records(stream: io.TextIOBase) -> Iterator[tuple[int, Any]]:
    for n, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as exc:
            yield n, ItemInvalid([("$", f"not valid JSON: {exc.msg} at column {exc.colno}")])


def import_items(engine: Engine, site_id: int, path: Path, *, fmt: str | None = None,
                 progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import ``path`` into the site's catalogue; ``progress(bytes_read)`` is called as the file is read."""
    fmt = detect_format(path, fmt)
    report = ImportReport()
    batch: list[dict[str, Any]] = []
    with open(path, "rb") as raw:
        stream = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="" if fmt == "csv" else None)
        records = _csv_records(stream) if fmt == "csv" else _jsonl_records(stream)
        try:
            for line, record in records:
                report.read += 1
                try:
                    if isinstance(record, ItemInvalid):
                        raise record
                    if isinstance(record, dict) and "_extra_cells" in record:
                        raise ItemInvalid([("$", "more cells than header columns")])
                    batch.append(clean_item(record, coerce_text=(fmt == "csv")))
                except ItemInvalid as exc:
                    item_id = record.get("id") if isinstance(record, dict) else None
                    report.rejected.append(Rejected(line, str(item_id)[:256] if item_id else None,
                                                    exc.problems))
                if len(batch) >= BATCH_ROWS:
                    report.stored += _store(engine, site_id, batch)
                    batch = []
                    if progress:
                        progress(raw.tell())
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"{path.name} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except csv.Error as exc:
            raise ImportFileError(f"{path.name}: CSV error near line {report.read + 1}: {exc}") from None
        report.stored += _store(engine, site_id, batch)
        if progress:
            progress(raw.tell())
    return report


def _store(engine: Engine, site_id: int, batch: list[dict[str, Any]]) -> int:
    # Within one file a later row for the same id wins, as it would across two imports.
    latest = {row["id"]: row for row in batch}
    if not latest:
        return 0
    with engine.begin() as conn:
        upsert_items(conn, site_id, latest.values())
    return len(batch)
