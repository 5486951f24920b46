"""Admin pages for seasons: nights, booking opening, caps, terms and limits."""
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from app.extensions import db
from app.models import Season
from app.services import allocation, seasons
from app.services.errors import DomainError, ValidationFailed
from app.web.admin.forms import SeasonForm
from app.web.admin.routes import bp
from app.web.common import actor, flash_error, role_required


def show_season_error(error: DomainError, form: SeasonForm) -> None:
    """Put a seasons-service refusal next to the form field it is about."""
    if isinstance(error, ValidationFailed):
        error = ValidationFailed({form.SERVICE_FIELDS.get(name, name): messages
                                  for name, messages in error.errors.items()}, error.message)
    flash_error(error, form)


@bp.get("/seasons")
@role_required("admin")
def seasons_index():
    """Every season, newest first."""
    rows = db.session.scalars(select(Season).order_by(Season.year.desc())).all()
    return render_template("admin/seasons.html", seasons=rows)


@bp.route("/seasons/new", methods=["GET", "POST"])
@role_required("admin")
def season_new():
    """Create a season."""
    form = SeasonForm()
    if form.validate_on_submit():
        try:
            season = seasons.create_season(actor(), form.values())
        except DomainError as error:
            show_season_error(error, form)
            return render_template("admin/season_form.html", form=form, season=None), error.status
        flash(_("Säsongen %(name)s är skapad.", name=season.name), "success")
        return redirect(url_for("admin.seasons_index"))
    status = 422 if request.method == "POST" else 200
    return render_template("admin/season_form.html", form=form, season=None), status


@bp.route("/seasons/<int:year>/edit", methods=["GET", "POST"])
@role_required("admin")
def season_edit(year):
    """Change a season's settings (the year is fixed)."""
    season = seasons.season_or_404(year)
    form = SeasonForm(data=SeasonForm.data_of(season))
    del form.year
    if form.validate_on_submit():
        try:
            seasons.update_season(actor(), year, form.values(season))
        except DomainError as error:
            show_season_error(error, form)
            return render_template("admin/season_form.html", form=form, season=season,
                                   round=allocation.public_round(year) if allocation.round_of(season) else None
                                   ), error.status
        flash(_("Säsongen %(year)s är uppdaterad.", year=year), "success")
        return redirect(url_for("admin.seasons_index"))
    status = 422 if request.method == "POST" else 200
    return render_template("admin/season_form.html", form=form, season=season,
                           round=allocation.public_round(year) if allocation.round_of(season) else None), status
