"""Small server-rendered SVG charts (no script, no inline style: colours come from admin.css classes)."""
from __future__ import annotations

from markupsafe import Markup, escape

REASON_CLASSES = ("none", "cold_session", "unknown_item", "no_model", "filtered", "no_answer")


def bar_chart(values: list[int | float], *, label: str, tooltips: list[str], width: int = 600,
              height: int = 120) -> Markup:
    """One bar per value (oldest first), scaled to the largest; ``tooltips`` (one per bar) show on hover and
    are read by screen readers with the chart's label."""
    n = max(1, len(values))
    top = max(values) if values and max(values) > 0 else 1
    pad_top, pad_bottom = 4, 2
    plot_h = height - pad_top - pad_bottom
    slot = width / n
    bar_w = max(1.0, slot * 0.8)
    bars = []
    for i, (v, tip) in enumerate(zip(values, tooltips)):
        h = plot_h * (v / top)
        x, y = i * slot + (slot - bar_w) / 2, pad_top + plot_h - h
        bars.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{max(h, 0):.1f}">'
                    f'<title>{escape(tip)}</title></rect>')
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(label)}">'
        f'<line class="axis" x1="0" y1="{height - pad_bottom}" x2="{width}" y2="{height - pad_bottom}"/>'
        + "".join(bars) + "</svg>")


def stacked_bar(parts: dict[str, int], *, label: str, width: int = 200, height: int = 14) -> Markup:
    """A horizontal bar split by fallback reason (classes ``reason-<name>``); unknown reasons share one class."""
    total = sum(parts.values()) or 1
    x, rects = 0.0, []
    for reason in sorted(parts, key=lambda r: (r != "none", r)):
        w = width * parts[reason] / total
        css = reason if reason in REASON_CLASSES else "other"
        rects.append(f'<rect class="reason-{css}" x="{x:.1f}" y="0" width="{w:.1f}" height="{height}">'
                     f'<title>{escape(reason)}: {parts[reason]:,}</title></rect>')
        x += w
    return Markup(f'<svg class="stacked" viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img" '
                  f'aria-label="{escape(label)}">' + "".join(rects) + "</svg>")

