"""Line charts drawn on the server as SVG geometry (no chart library, no CDN, no script): the
loan page's balance over time and the portfolio dashboard's 90-day charts. Pure: dates and
numbers in, coordinates and labels out; the template ``admin/includes/line_chart.html`` draws
them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from loans.formatting import money


@dataclass(frozen=True)
class Series:
    label: str
    points: list[tuple[date, Decimal | int]]
    css: str = ""  # the CSS class of its line (series-0 ... series-5 by default)


@dataclass
class Chart:
    chart_id: str
    title: str
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    lines: list[dict] = field(default_factory=list)
    y_labels: list[dict] = field(default_factory=list)
    x_labels: list[dict] = field(default_factory=list)
    legend: list[dict] = field(default_factory=list)
    empty: bool = False


def _fmt(value, integer: bool) -> str:
    return f"{int(value):,}" if integer else money(value)


def line_chart(
    chart_id: str,
    title: str,
    series: list[Series],
    *,
    width: int = 560,
    height: int = 220,
    integer: bool = False,
) -> Chart:
    """Each series as a polyline over a shared date axis (x) and value axis from 0 (y), with
    the maximum, the half and zero on the y axis and the first, middle and last date on x."""
    left, right, top, bottom = 70, width - 10, 28, height - 30
    chart = Chart(chart_id, title, width, height, left, right, top, bottom)
    dates = [d for s in series for d, _v in s.points]
    values = [Decimal(v) for s in series for _d, v in s.points]
    if not dates:
        chart.empty = True
        return chart
    x_min, x_max = min(dates), max(dates)
    y_max = max(max(values), Decimal(1))
    span = max((x_max - x_min).days, 1)

    def x(d: date) -> float:
        return round(left + (right - left) * (d - x_min).days / span, 1)

    def y(v) -> float:
        return round(bottom - float((bottom - top) * Decimal(v) / y_max), 1)

    for index, s in enumerate(series):
        css = s.css or f"series-{index % 6}"
        points = sorted(s.points)
        chart.lines.append(
            {
                "css": css,
                "label": s.label,
                "points": " ".join(f"{x(d)},{y(v)}" for d, v in points),
                "last": _fmt(points[-1][1], integer) if points else "",
            }
        )
        chart.legend.append(
            {
                "css": css,
                "swatch": css.replace("series-", "swatch-"),
                "label": s.label,
                "x": left + 10 + 240 * index,
                "y": 14,
            }
        )
    fractions = (Decimal(1), Decimal("0.5"), Decimal(0))
    if integer and y_max < 2:
        fractions = (Decimal(1), Decimal(0))  # no "0.5 loans"
    for fraction in fractions:
        value = y_max * fraction
        chart.y_labels.append({"y": y(value), "text": _fmt(value, integer)})
    middle = x_min + (x_max - x_min) / 2
    for d, anchor in ((x_min, "start"), (middle, "middle"), (x_max, "end")):
        chart.x_labels.append({"x": x(d), "text": d.isoformat(), "anchor": anchor})
    return chart
