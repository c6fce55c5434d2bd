"""Placeholder pictures for the demo catalogue: a small deterministic SVG per item (no files to ship)."""
from __future__ import annotations

import hashlib
from html import escape

from backend.demo.inventory import DemoItem

CATEGORY_HUES = {"Shoes": 12, "Jackets": 205, "Bags": 32, "Watches": 260, "Headphones": 330, "Coffee": 25,
                 "Books": 140, "Plants": 100, "Cooking": 18, "Travel": 190, "Science": 230, "Music": 290,
                 "Fitness": 150, "Gaming": 275}


def item_svg(item: DemoItem) -> str:
    digest = hashlib.sha256(item.id.encode()).digest()
    hue = (CATEGORY_HUES.get(item.category, digest[0]) + digest[1] % 24 - 12) % 360
    wide = item.kind == "video"
    w, h = (320, 180) if wide else (240, 240)
    cx, cy, r = w / 2 + (digest[2] % 40 - 20), h / 2 - 10 + (digest[3] % 20 - 10), 34 + digest[4] % 30
    shape = digest[5] % 3
    if shape == 0:
        glyph = f'<circle cx="{cx:.0f}" cy="{cy:.0f}" r="{r}" fill="hsl({hue},70%,88%)" opacity=".9"/>'
    elif shape == 1:
        glyph = (f'<rect x="{cx - r:.0f}" y="{cy - r:.0f}" width="{2 * r}" height="{2 * r}" rx="{r // 4}" '
                 f'fill="hsl({hue},70%,88%)" opacity=".9" transform="rotate({digest[6] % 30} {cx:.0f} {cy:.0f})"/>')
    else:
        glyph = (f'<polygon points="{cx:.0f},{cy - r:.0f} {cx + r:.0f},{cy + r * .8:.0f} {cx - r:.0f},{cy + r * .8:.0f}"'
                 f' fill="hsl({hue},70%,88%)" opacity=".9"/>')
    play = (f'<circle cx="{w / 2:.0f}" cy="{h / 2 - 10:.0f}" r="22" fill="rgba(0,0,0,.35)"/><polygon points="'
            f'{w / 2 - 7:.0f},{h / 2 - 22:.0f} {w / 2 + 11:.0f},{h / 2 - 10:.0f} {w / 2 - 7:.0f},{h / 2 + 2:.0f}" '
            f'fill="#fff"/>') if wide else ""
    label = escape(item.title if len(item.title) <= 30 else item.title[:28] + "…")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
            f'aria-label="{escape(item.title)}"><defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">'
            f'<stop offset="0" stop-color="hsl({hue},60%,62%)"/><stop offset="1" stop-color="hsl({(hue + 40) % 360},'
            f'55%,42%)"/></linearGradient></defs><rect width="{w}" height="{h}" fill="url(#g)"/>{glyph}{play}'
            f'<text x="12" y="{h - 14}" font-family="system-ui,sans-serif" font-size="13" fill="#fff" '
            f'opacity=".95">{label}</text></svg>')
