"""The public transparency page /insyn: the season's figures with a chart drawn by the app (SVG)."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, render_template, request
from flask_babel import format_decimal
from flask_babel import gettext as _

from app.services import allocation, transparency
from app.services.errors import NotFound
from app.services.seasons import season_for_year
from app.web.converters import int32

bp = Blueprint("transparency", __name__)

WIDTH, HEIGHT = 640, 320
LEFT, RIGHT, TOP, BOTTOM = 84, 16, 24, 56
BAR, GAP = 64, 12


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    value_ore: int
    series: str  # "previous" or "current"
    label: str


@dataclass
class Chart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    baseline: float
    bars: list[Bar]
    groups: list[tuple[float, str]]  # (centre x, label)
    ticks: list[tuple[float, int]]  # (y, öre)
    cap_y: float | None
    cap_ore: int
    year: int
    previous_year: int | None


def _nice_step(top_ore: int) -> int:
    """A round tick step in öre (whole hundreds of kronor) giving four or five ticks."""
    for step_kr in (50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if top_ore / (step_kr * 100) <= 5:
            return step_kr * 100
    return 20000 * 100


def price_chart(figures: dict) -> Chart:
    """Bars for the median and 90th percentile, last season beside this one, with the price cap as a line."""
    previous = figures.get("previous_year") or {}
    cap = figures.get("price_cap_ore") or 0
    values = [v for v in (figures["median_price_ore"], figures["p90_price_ore"], previous.get("median_price_ore"),
                          previous.get("p90_price_ore"), cap) if v]
    step = _nice_step(max(values) if values else 100000)
    top = max(step, -(-max(values or [step]) // step) * step)
    plot_height = HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_height

    def y_of(ore: int) -> float:
        return baseline - plot_height * ore / top

    bars, groups = [], []
    group_width = (WIDTH - LEFT - RIGHT) / 2
    for i, (key, label) in enumerate((("median_price_ore", _("Median")), ("p90_price_ore", _("90:e percentilen")))):
        centre = LEFT + group_width * (i + 0.5)
        groups.append((centre, label))
        series = [("previous", previous.get(key), previous.get("year")), ("current", figures[key], figures["year"])]
        for j, (name, value, year) in enumerate(series):
            if value is None:
                continue
            x = centre - BAR - GAP / 2 if j == 0 else centre + GAP / 2
            bars.append(Bar(x, y_of(value), BAR, baseline - y_of(value), value, name, f"{label} {year}"))
    ticks = [(y_of(v), v) for v in range(0, top + 1, step)]
    return Chart(WIDTH, HEIGHT, LEFT, WIDTH - RIGHT, baseline, bars, groups, ticks,
                 y_of(cap) if cap else None, cap, figures["year"], previous.get("year"))


def price_changes(figures: dict) -> dict[str, str | None]:
    """Each price measure's change against last season, as a signed percentage in the page's language."""
    previous = figures.get("previous_year") or {}
    changes: dict[str, str | None] = {}
    for key in ("median_price_ore", "p90_price_ore"):
        before, now = previous.get(key), figures.get(key)
        changes[key] = (format_decimal((now - before) * 100 / before, format="+#,##0.0;-#,##0.0") + " %"
                        if before and now is not None else None)
    return changes


@bp.get("/insyn")
def insyn():
    """Show the season's public figures: hosts, beds, booked share, prices against last season, breaches."""
    year = request.args.get("year", type=int32)
    try:
        figures = transparency.figures(year)
    except NotFound:
        return render_template("public/insyn.html", figures=None, chart=None, year=year), 404 if year else 200
    season = season_for_year(figures["year"])
    allocation_round = allocation.public_round(figures["year"]) if allocation.round_of(season) else None
    return render_template("public/insyn.html", figures=figures, chart=price_chart(figures),
                           changes=price_changes(figures), year=figures["year"], round=allocation_round)
