"""Small server-rendered SVG charts (no script, no inline style: colours come from admin.css classes)."""
from __future__ import annotations

import math

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


def _nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten) spread over [lo, hi], about ``count`` of them."""
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]


def _percent(v: float, step: float) -> str:
    return "0%" if abs(v) < step / 2 else f"{100 * v:+.{0 if step >= 0.01 else 1}f}%"


def uplift_chart(series: dict, *, label: str, width: int = 640, height: int = 240) -> Markup:
    """The daily cumulative uplift of every arm over the control (``series``: ``series_from_sessions``'s dict):
    one line per arm (classes ``arm-1``...) inside its 95% band, gridlines at round percentages, the zero line.
    The y range fits the lines and the last day's bands: the early days' wide bands are cut at the edges."""
    days = series.get("days") or []
    arms = [name for name in (days[0]["arms"] if days else {}) if name != series.get("control")]
    points = {a: [(i, d["arms"][a]) for i, d in enumerate(days) if d["arms"][a].get("uplift") is not None]
              for a in arms}
    if not any(points.values()):
        return Markup(f'<p class="hint">{escape(label)}: no uplift yet (it needs requests in the control and '
                      f'another arm).</p>')
    fitted = [0.0] + [e["uplift"] for pts in points.values() for _, e in pts]
    fitted += [v for pts in points.values() if pts for v in (pts[-1][1].get("uplift_low"),
                                                            pts[-1][1].get("uplift_high")) if v is not None]
    lo, hi = min(fitted), max(fitted)
    pad = max(0.15 * (hi - lo), 0.02)
    lo, hi = lo - pad, hi + pad
    ticks = _nice_ticks(lo, hi)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else hi - lo
    left, right, top, bottom = 66, 12, 8, 28
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (plot_w * i / (len(days) - 1) if len(days) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (hi - v) / (hi - lo)

    parts = [f'<clipPath id="uplift-plot"><rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/>'
             f'</clipPath>']
    for v in ticks:
        css = "zero" if abs(v) < step / 2 else "grid"
        parts.append(f'<line class="{css}" x1="{left}" y1="{y(v):.1f}" x2="{width - right}" y2="{y(v):.1f}"/>'
                     f'<text class="tick" x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">'
                     f'{_percent(v, step)}</text>')
    shown_days = sorted({0, len(days) - 1} | ({(len(days) - 1) // 2} if len(days) >= 5 else set()))
    for i in shown_days:
        anchor = "start" if i == 0 and len(days) > 1 else ("end" if i == len(days) - 1 and i else "middle")
        parts.append(f'<text class="tick" x="{x(i):.1f}" y="{height - 6}" text-anchor="{anchor}">'
                     f'{escape(days[i]["day"])}</text>')
    plot = []
    for k, arm in enumerate(arms, start=1):
        css, pts = f"arm-{min(k, 4)}", points[arm]
        band = [(i, e) for i, e in pts if e.get("uplift_low") is not None and e.get("uplift_high") is not None]
        if len(band) > 1:
            upper = " ".join(f"{x(i):.1f},{y(e['uplift_high']):.1f}" for i, e in band)
            lower = " ".join(f"{x(i):.1f},{y(e['uplift_low']):.1f}" for i, e in reversed(band))
            plot.append(f'<polygon class="band {css}" points="{upper} {lower}"/>')
        if pts:
            line = " ".join(f"{x(i):.1f},{y(e['uplift']):.1f}" for i, e in pts)
            plot.append(f'<polyline class="line {css}" points="{line}"><title>{escape(arm)}</title></polyline>')
            last_i, last = pts[-1]
            plot.append(f'<circle class="dot {css}" cx="{x(last_i):.1f}" cy="{y(last["uplift"]):.1f}" r="3.5">'
                        f'<title>{escape(arm)}: {100 * last["uplift"]:+.1f}% on {escape(days[last_i]["day"])}'
                        f'</title></circle>')
    parts.append('<g clip-path="url(#uplift-plot)">' + "".join(plot) + "</g>")
    legend = "".join(f'<span class="legend-item"><span class="swatch arm-{min(k, 4)}"></span>{escape(a)}</span>'
                     for k, a in enumerate(arms, start=1))
    return Markup(f'<svg class="uplift" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
                  + "".join(parts) + f'</svg><div class="legend">{legend}</div>')
