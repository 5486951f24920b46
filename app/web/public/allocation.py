"""The allocation round's public page (/fordelning/<year>): the commitment, the status, the number of requests and,
after the draw, the seed and the whole draw, with how to check it."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for

from app.services import allocation, lottery
from app.services.seasons import current_season

bp = Blueprint("fordelning", __name__)


@bp.get("/fordelning")
def index():
    """The current season's round, or a page that says there is none."""
    season = current_season()
    if season is not None and allocation.round_of(season) is not None:
        return redirect(url_for("fordelning.round_page", year=season.year))
    return render_template("public/allocation.html", round=None, draw=None, season=season), 404


@bp.get("/fordelning/<int:year>")
def round_page(year):
    """Show a season's round: its times, status, commitment and requests; after the draw the seed and every rank."""
    view = allocation.public_round(year)
    draw = allocation.result(year) if view.status == "drawn" else None
    return render_template("public/allocation.html", round=view, draw=draw,
                           verified=lottery.verify(draw) if draw else None, season=None)
