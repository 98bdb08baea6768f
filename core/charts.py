"""Small server-rendered SVG bar charts for the admin: no JavaScript, no CDN, readable without colour.

A chart is bars over time with a title, the largest value as the scale, and a label under the first, middle
and last bar; a missing value (no data for that bucket) is a gap, not a zero. Each bar has a <title> tooltip
with its label and value, so the exact figures are one hover away (and in the page for tests).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT, TOP, BOTTOM, LEFT = 480, 150, 22, 22, 44


@dataclass(frozen=True)
class Point:
    label: str  # e.g. "Nov 25 14:00"
    value: float | None  # None: no data


def format_value(value: float, percent: bool) -> str:
    if percent:
        return f"{100 * value:.0f}%"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def bar_chart(chart_id: str, title: str, points: Sequence[Point], percent: bool = False) -> SafeString:
    """An SVG bar chart of `points` (oldest first); `percent` for values in 0..1."""
    values = [point.value for point in points if point.value is not None]
    top = 1.0 if percent else max([*values, 1.0])
    plot_width, plot_height = WIDTH - LEFT - 4, HEIGHT - TOP - BOTTOM
    slot = plot_width / max(len(points), 1)
    bars = []
    for index, point in enumerate(points):
        if point.value is None:
            continue
        height = max(1.0, plot_height * point.value / top) if point.value > 0 else 0.0
        x = LEFT + index * slot + slot * 0.1
        bars.append(
            (
                f"{x:.1f}",
                f"{TOP + plot_height - height:.1f}",
                f"{slot * 0.8:.1f}",
                f"{height:.1f}",
                f"{point.label}: {format_value(point.value, percent)}",
            )
        )
    anchors = {0: "start", len(points) // 2: "middle", len(points) - 1: "end"} if points else {}
    offset = {"start": 0.0, "middle": slot / 2, "end": slot}
    labels = [
        (f"{LEFT + index * slot + offset[anchor]:.1f}", HEIGHT - 6, anchor, points[index].label)
        for index, anchor in anchors.items()
    ]
    empty = (
        ""
        if values
        else format_html(
            '<text x="{}" y="{}" text-anchor="middle" class="chart-empty">no data yet</text>', WIDTH // 2, HEIGHT // 2
        )
    )
    return format_html(
        '<svg id="{}" class="chart" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" height="{}" '
        'xmlns="http://www.w3.org/2000/svg" style="max-width:100%;font:11px sans-serif">'
        "<title>{}</title>"
        '<text x="{}" y="14" font-weight="bold">{}</text>'
        '<text x="{}" y="{}" text-anchor="end">{}</text><text x="{}" y="{}" text-anchor="end">0</text>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999"/>'
        "{}{}{}"
        "</svg>",
        chart_id,
        title,
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        title,
        LEFT,
        title,
        LEFT - 4,
        TOP + 8,
        format_value(top, percent),
        LEFT - 4,
        TOP + plot_height,
        LEFT,
        TOP + plot_height,
        WIDTH - 4,
        TOP + plot_height,
        format_html_join(
            "",
            '<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="#417690"><title>{}</title></rect>',
            bars,
        ),
        format_html_join("", '<text x="{}" y="{}" text-anchor="{}" fill="#666">{}</text>', labels),
        empty,
    )
