"""The uplift chart: lines and bands where the values are, round gridlines, the zero line, escaped names, and a
hint instead of an empty chart."""
import re

from backend.web.admin.charts import _nice_ticks, uplift_chart


def series(days: list[dict[str, tuple]]) -> dict:
    """days: per day, arm -> (uplift, low, high); the control "A" has no uplift."""
    return {"control": "A", "days": [
        {"day": f"2026-01-{k + 1:02d}", "arms": {"A": {"value": 1.0}, **{
            name: {"uplift": u, "uplift_low": lo, "uplift_high": hi} for name, (u, lo, hi) in arms.items()}}}
        for k, arms in enumerate(days)]}


def points(svg: str, tag: str, css: str) -> list[tuple[float, float]]:
    found = re.search(rf'<{tag} class="{css}" points="([^"]+)"', svg).group(1)
    return [tuple(map(float, p.split(","))) for p in found.split()]


def test_lines_fit_the_plot_and_early_wide_bands_are_cut():
    data = series([{"B": (0.5, -0.9, 4.0)}, {"B": (0.1, -0.2, 0.4)}, {"B": (0.2, 0.05, 0.35)}])
    svg = str(uplift_chart(data, label="Clicks"))
    line = points(svg, "polyline", "line arm-1")
    assert len(line) == 3 and line[0][0] < line[1][0] < line[2][0]
    assert line[0][1] < line[2][1] < line[1][1]                      # higher uplift = higher on the chart
    band = points(svg, "polygon", "band arm-1")
    assert len(band) == 6
    assert min(y for _, y in band) < 0                               # the first day's band reaches past the top
    assert '<g clip-path="url(#uplift-plot)">' in svg                # ... and is cut at the plot's edge
    top, bottom = 8, 240 - 28
    assert all(top <= y <= bottom for _, y in line)
    assert svg.count('class="zero"') == 1 and ">0%<" in svg and ">+20%<" in svg and ">+40%<" in svg


def test_ticks_are_round_and_cover_the_range():
    assert _nice_ticks(-0.1, 0.8) == [0.0, 0.2, 0.4, 0.6000000000000001, 0.8]
    ticks = _nice_ticks(-0.013, 0.031)
    assert ticks[0] >= -0.013 and ticks[-1] <= 0.031 and len(ticks) >= 4


def test_names_are_escaped_and_a_chart_without_uplift_is_a_hint():
    svg = str(uplift_chart(series([{"<b>": (0.1, None, None)}]), label="x"))
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "polygon" not in svg      # one day: no band
    assert "no uplift yet" in str(uplift_chart(series([{"B": (None, None, None)}]), label="Clicks"))
    assert "no uplift yet" in str(uplift_chart({"control": "A", "days": []}, label="<i>"))
