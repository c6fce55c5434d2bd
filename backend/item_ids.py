"""The one rule for item ids, shared by every server check (events, recommendations, the catalogue) and by the
widget: widget/build.py writes ``js_pattern()`` into static/w.js, so the two cannot drift.

An id is 1-256 characters (Unicode code points, not UTF-16 units) with none of the characters in ``FORBIDDEN``:
control characters, invisible format characters (zero-width joiner and space, direction marks and overrides,
the byte order mark, soft hyphen, tags), separators other than the plain space (no-break, narrow, ideographic,
line and paragraph separators), surrogates and private-use characters. The table is explicit rather than
asked of a Unicode database, so Python and every browser agree whatever Unicode version each one has;
tests/test_item_ids.py checks it against Python's ``unicodedata`` for every assigned character (code points
not assigned yet are allowed).

Commas are allowed in an id, but ``history`` and ``exclude`` are comma-separated lists: an id with a comma can be
sent in events and as ``item``, never in a list (the widget leaves such ids out of its history).
"""
from __future__ import annotations

import re
from typing import Any

ID_MAX = 256
LIST_SEPARATOR = ","

# (first, last) code points, inclusive, sorted: categories Cc, Cf, Cs, Co, Zl, Zp and Zs except U+0020
FORBIDDEN: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F), (0x007F, 0x00A0), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x1680, 0x1680),
    (0x180E, 0x180E), (0x2000, 0x200F), (0x2028, 0x202F), (0x205F, 0x2064), (0x2066, 0x206F),
    (0x3000, 0x3000), (0xD800, 0xF8FF), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
    (0xE0020, 0xE007F), (0xF0000, 0x10FFFF),
)

DESCRIPTION = (f"1-{ID_MAX} characters, without control, invisible formatting (zero-width, direction marks) or "
               "special space characters (a plain space is fine)")


def _class(escape) -> str:
    return "".join(escape(lo) if lo == hi else f"{escape(lo)}-{escape(hi)}" for lo, hi in FORBIDDEN)


def _py(cp: int) -> str:
    return f"\\U{cp:08x}"


def _js(cp: int) -> str:
    return f"\\u{{{cp:x}}}"


_FORBIDDEN_RE = re.compile(f"[{_class(_py)}]")
_ID_RE = re.compile(f"[^{_class(_py)}]{{1,{ID_MAX}}}")


def js_pattern() -> str:
    """The rule as a JavaScript regular expression literal (the ``u`` flag: it counts code points)."""
    return f"/^[^{_class(_js)}]{{1,{ID_MAX}}}$/u"


def valid_id(value: Any) -> bool:
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def id_problem(value: Any) -> str | None:
    """What is wrong with ``value`` as an item id, or None when it is a valid one."""
    if not isinstance(value, str):
        return "must be a string"
    if not value or len(value) > ID_MAX:
        return f"must be 1-{ID_MAX} characters, got {len(value)}"
    if (bad := _FORBIDDEN_RE.search(value)):
        return f"must not contain U+{ord(bad.group()):04X} (control, invisible or special space character)"
    return None


def listable(value: Any) -> bool:
    """A valid id that can travel in a comma-separated list (``history``, ``exclude``)."""
    return valid_id(value) and LIST_SEPARATOR not in value
