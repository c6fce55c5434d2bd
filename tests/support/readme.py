"""The README's integration snippets, read from README.md as a reader would copy them."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def integrating_snippets() -> list[tuple[str, str]]:
    """(heading, html) of each ```html block of the "Integrating" section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n## Integrating\n"):]
    section = section[:section.index("\n## ", 1)]
    return [(m.group(1), m.group(2)) for m in
            re.finditer(r"\*\*([^*\n]+)\*\*:[^\n]*\n\n```html\n(.*?)\n```", section, flags=re.S)]
