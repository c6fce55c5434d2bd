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



def uplift_chart(series: dict, *, label: str, width: int = 640, height: int = 220) -> Markup:
    """The daily cumulative uplift of every arm over the control: one line per arm (classes ``arm-1``...) inside
    its 95% band, the zero line, and the y range as percentages. ``series`` is ``uplift_series``'s dict."""
    days = series.get("days") or []
    arms = [name for name in (days[0]["arms"] if days else {}) if name != series.get("control")]
    values = [v for d in days for a in arms for k in ("uplift_low", "uplift_high", "uplift")
              if isinstance(v := d["arms"][a].get(k), (int, float))]
    if not values:
        return Markup(f'<p class="hint">{escape(label)}: no uplift yet (it needs requests in the control and '
                      f'another arm).</p>')
    lo, hi = min(min(values), 0.0), max(max(values), 0.0)
    span = (hi - lo) or 1.0
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    pad_l, pad_r, pad_t, pad_b = 52, 10, 10, 24
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b

    def x(i: int) -> float:
        return pad_l + (plot_w * i / (len(days) - 1) if len(days) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return pad_t + plot_h * (hi - v) / (hi - lo)

    parts = [f'<line class="zero" x1="{pad_l}" y1="{y(0):.1f}" x2="{width - pad_r}" y2="{y(0):.1f}"/>',
             f'<text class="tick" x="{pad_l - 6}" y="{y(hi) + 10:.1f}" text-anchor="end">{100 * hi:+.1f}%</text>',
             f'<text class="tick" x="{pad_l - 6}" y="{y(lo):.1f}" text-anchor="end">{100 * lo:+.1f}%</text>',
             f'<text class="tick" x="{pad_l - 6}" y="{y(0) + 4:.1f}" text-anchor="end">0%</text>',
             f'<text class="tick" x="{pad_l}" y="{height - 6}">{escape(days[0]["day"])}</text>',
             f'<text class="tick" x="{width - pad_r}" y="{height - 6}" text-anchor="end">'
             f'{escape(days[-1]["day"])}</text>']
    for k, arm in enumerate(arms, start=1):
        css = f"arm-{min(k, 4)}"
        pts = [(i, d["arms"][arm]) for i, d in enumerate(days) if d["arms"][arm].get("uplift") is not None]
        band = [(i, e) for i, e in pts if e.get("uplift_low") is not None and e.get("uplift_high") is not None]
        if len(band) > 1:
            upper = " ".join(f"{x(i):.1f},{y(e['uplift_high']):.1f}" for i, e in band)
            lower = " ".join(f"{x(i):.1f},{y(e['uplift_low']):.1f}" for i, e in reversed(band))
            parts.append(f'<polygon class="band {css}" points="{upper} {lower}"/>')
        if pts:
            line = " ".join(f"{x(i):.1f},{y(e['uplift']):.1f}" for i, e in pts)
            parts.append(f'<polyline class="line {css}" points="{line}"><title>{escape(arm)}</title></polyline>')
            last_i, last = pts[-1]
            parts.append(f'<circle class="dot {css}" cx="{x(last_i):.1f}" cy="{y(last["uplift"]):.1f}" r="3">'
                         f'<title>{escape(arm)}: {100 * last["uplift"]:+.1f}% on {escape(days[last_i]["day"])}'
                         f'</title></circle>')
    legend = "".join(f'<span class="legend-item"><span class="swatch arm-{min(k, 4)}"></span>{escape(a)}</span>'
                     for k, a in enumerate(arms, start=1))
    return Markup(f'<svg class="uplift" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
                  + "".join(parts) + f'</svg><div class="legend">{legend}</div>')
