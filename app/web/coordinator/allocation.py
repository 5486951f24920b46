"""The coordinator's page for the allocation round: make, see and withdraw the organisation's request, and see the
draw's answer with its ref and rank."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, RadioField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Optional

from app.extensions import db
from app.labels import lazy_choices
from app.models import Booking, Delegation, Season, WaitlistEntry
from app.services import allocation, listings, waitlist
from app.services.errors import DomainError
from app.services.proposals import DEFAULT_LISTINGS
from app.services.seasons import current_season, season_or_404
from app.web.common import actor, flash_error, required, role_required
from app.web.converters import Int32Field, int32
from app.web.coordinator.forms import StayWishForm

bp = Blueprint("allocation", __name__, url_prefix="/coordinator/fordelning")

PREFERRED_FIELDS = [f"preferred_{n}" for n in range(1, allocation.MAX_PREFERRED + 1)]


class RequestForm(StayWishForm):
    """Shape only: the limits, the listings and the round's window are allocation.submit_request's."""

    delegation_id = SelectField(_l("Delegation"), coerce=int, validators=[InputRequired()])
    max_listings = Int32Field(_l("Högst antal boenden att dela upp delegationen på"), default=DEFAULT_LISTINGS,
                              validators=[Optional()])
    preferred_1 = Int32Field(_l("Önskat boende 1 (boendets nummer)"), validators=[Optional()])
    preferred_2 = Int32Field(_l("Önskat boende 2"), validators=[Optional()])
    preferred_3 = Int32Field(_l("Önskat boende 3"), validators=[Optional()])
    preferred_4 = Int32Field(_l("Önskat boende 4"), validators=[Optional()])
    preferred_5 = Int32Field(_l("Önskat boende 5"), validators=[Optional()])
    payment_method = RadioField(_l("Betalning"), choices=[SelectChoice(value, words) for value, words
                                                          in lazy_choices("payment_method")],
                                default="invoice", validators=[InputRequired()])
    accept_contract = BooleanField(_l("Jag godkänner i förväg det bindande avtalet enligt säsongens villkor"),
                                   validators=[DataRequired(message=_l("Kryssa i att du godkänner avtalet i förväg "
                                                                       "för att ansöka."))])

    @property
    def preferred_listing_ids(self) -> list[int]:
        return [value for value in (self[name].data for name in PREFERRED_FIELDS) if value is not None]


class ConfirmForm(FlaskForm):
    """CSRF only."""


@bp.before_request
@role_required("coordinator")
def require_coordinator():
    """Every page here is for signed-in coordinators only."""


def _season() -> Season | None:
    year = request.values.get("year", type=int32)
    return season_or_404(year) if year else current_season()


def _request_form(season: Season | None, formdata=None) -> RequestForm:
    form = RequestForm(formdata=formdata) if formdata is not None else RequestForm()
    form.delegation_id.choices = [SelectChoice(d.id, f"{d.name} ({d.organisation_number})") for d in db.session.scalars(
        select(Delegation).where(Delegation.coordinator_id == current_user.id).order_by(Delegation.id))]
    if formdata is None and season is not None:
        form.check_in.data, form.check_out.data, form.beds.data = season.first_night, season.check_out_day, 1
    return form


def _render(season: Season | None, form: RequestForm, status: int = 200):
    """The page: the round, the coordinator's requests and their outcome, the form while requests are open."""
    view = allocation.public_round(season.year) if season is not None and allocation.round_of(season) else None
    mine = allocation.requests_for(actor(), view.year) if view is not None else []
    bookings = {r.id: list(db.session.scalars(select(Booking).where(Booking.order_id == r.order_id)
                                                .order_by(Booking.id))) for r in mine if r.order_id}
    entries = {r.id: db.session.get(WaitlistEntry, r.waitlist_entry_id) for r in mine if r.waitlist_entry_id}
    places = {request_id: waitlist.place_in_queue(entry) for request_id, entry in entries.items()
              if entry is not None and entry.status == "waiting"}
    public, _total = listings.visible_page(0, 500)
    return render_template("coordinator/allocation.html", season=season, round=view, requests=mine, form=form,
                           bookings=bookings, entries=entries, places=places, listings=public,
                           preferred_fields=PREFERRED_FIELDS, withdraw_form=ConfirmForm(),
                           preferred_titles={listing.id: listing.title for listing in public}), status


@bp.get("/")
def index():
    """Show the round, the organisation's request and its outcome, and the form to make one."""
    season = _season()
    return _render(season, _request_form(season))


@bp.post("/")
def submit():
    """Make the organisation's request in the round, with the contract accepted in advance."""
    season = _season()
    form = _request_form(season, request.form)
    if season is None or not form.validate_on_submit():
        return _render(season, form, 422)
    try:
        made = allocation.submit_request(
            actor(), season.year, delegation_id=form.delegation_id.data, check_in=form.check_in.data,
            check_out=form.check_out.data, beds=required(form.beds.data),
            max_walking_minutes=form.max_walking_minutes.data, max_price_ore=form.max_price_ore,
            max_listings=form.max_listings.data or DEFAULT_LISTINGS,
            preferred_listing_ids=form.preferred_listing_ids, payment_method=form.payment_method.data,
            accept_contract=form.accept_contract.data)
    except DomainError as error:
        flash_error(error, form)
        return _render(season, form, error.status)
    flash(_("Ansökan är inskickad. Er referens är %(ref)s; den visas i den offentliga dragningen.", ref=made.ref),
          "success")
    return redirect(url_for("allocation.index", year=season.year))


@bp.post("/<int:request_id>/withdraw")
def withdraw(request_id):
    """Withdraw the request before the draw."""
    season = _season()
    if season is None:
        return redirect(url_for("allocation.index"))
    allocation.own_request(actor(), season.year, request_id)
    if not ConfirmForm().validate_on_submit():
        return _render(season, _request_form(season), 422)
    try:
        allocation.withdraw_request(actor(), season.year, request_id)
    except DomainError as error:
        flash(error.message, "error")
        return _render(season, _request_form(season), error.status)
    flash(_("Ansökan är tillbakadragen. Ni kan göra en ny så länge ansökan är öppen."), "success")
    return redirect(url_for("allocation.index", year=season.year))
