"""Coordinator pages for the waiting list: join, see offers, accept or leave."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, SelectField
from wtforms.validators import InputRequired

from app.extensions import db
from app.models import Booking, Delegation, Listing
from app.services import waitlist
from app.services.errors import DomainError
from app.services.seasons import current_season
from app.web.common import actor, flash_error, required, role_required
from app.web.coordinator.forms import StayWishForm

bp = Blueprint("waitlist", __name__, url_prefix="/coordinator/waitlist")


class JoinForm(StayWishForm):
    """Shape only: the limits on beds, walking time and price are waitlist.join's."""

    delegation_id = SelectField(_l("Delegation"), coerce=int, validators=[InputRequired()])


class AcceptForm(FlaskForm):
    accept_contract = BooleanField(_l("Jag godkänner det bindande avtalet för min delegation"))


class CancelForm(FlaskForm):
    """CSRF only."""


@bp.before_request
@role_required("coordinator")
def require_coordinator():
    """Every page here is for signed-in coordinators only."""


def _join_form(formdata=None) -> JoinForm:
    form = JoinForm(formdata=formdata) if formdata is not None else JoinForm()
    form.delegation_id.choices = [(d.id, f"{d.name} ({d.organisation_number})") for d in db.session.scalars(
        select(Delegation).where(Delegation.coordinator_id == current_user.id).order_by(Delegation.id))]
    return form


def _render(form: JoinForm, status: int = 200):
    entries = waitlist.entries_for(actor())
    offers = {e.id: db.session.get_one(Booking, e.offer_booking_id) for e in entries if e.offer_booking_id}
    listings = {b.listing_id: db.session.get(Listing, b.listing_id) for b in offers.values()}
    return render_template("waitlist/index.html", form=form, entries=entries, offers=offers, listings=listings,
                           accept_form=AcceptForm(), cancel_form=CancelForm(), season=current_season()), status


@bp.get("/")
def index():
    """Show the delegation's waiting-list entries, their offers, and the form to join."""
    form = _join_form(request.args) if request.args else _join_form()  # prefilled from a fruitless search
    season = current_season()
    if not request.args and season is not None:
        form.check_in.data, form.check_out.data, form.beds.data = season.first_night, season.check_out_day, 1
    return _render(form)


@bp.post("/")
def join():
    """Put a delegation on the waiting list for a stay."""
    form = _join_form()
    if not form.validate_on_submit():
        return _render(form, 422)
    try:
        waitlist.join(actor(), delegation_id=form.delegation_id.data, year=form.check_in.data.year,
                      check_in=form.check_in.data, check_out=form.check_out.data, beds=required(form.beds.data),
                      max_walking_minutes=form.max_walking_minutes.data,
                      max_price_ore=form.max_price_ore)
    except DomainError as error:
        flash_error(error, form)
        return _render(form, error.status)
    flash(_("Ni står i väntelistan. Blir bäddar lediga får ni ett erbjudande via e-post, reserverat i 48 timmar."),
          "success")
    return redirect(url_for("waitlist.index"))


@bp.post("/<int:entry_id>/accept")
def accept(entry_id):
    """Accept a reserved offer under the binding contract (invoice)."""
    waitlist.own_entry(actor(), entry_id)
    form = AcceptForm()
    if not form.validate_on_submit():
        return _render(_join_form(), 422)
    try:
        booking = waitlist.accept_offer(actor(), entry_id, accept_contract=form.accept_contract.data)
    except DomainError as error:
        flash(error.message, "error")
        return _render(_join_form(), error.status)
    contract = required(booking.contract)  # formed when the offer is accepted
    flash(_("Erbjudandet är accepterat. Avtal %(number)s är bindande.", number=contract.number), "success")
    return redirect(url_for("waitlist.index"))


@bp.post("/<int:entry_id>/cancel")
def cancel(entry_id):
    """Leave the waiting list (declining any offer)."""
    waitlist.own_entry(actor(), entry_id)
    if not CancelForm().validate_on_submit():
        return _render(_join_form(), 422)
    try:
        waitlist.cancel(actor(), entry_id)
    except DomainError as error:
        flash(error.message, "error")
        return _render(_join_form(), error.status)
    flash(_("Ni har lämnat väntelistan för den vistelsen."), "success")
    return redirect(url_for("waitlist.index"))
