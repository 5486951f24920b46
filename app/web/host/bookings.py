"""Host pages for bookings: the calendar per bed and night, blocking nights, host cancellation."""
from __future__ import annotations

from datetime import date

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from app.extensions import db
from app.i18n import kr
from app.models import Bed, BedNight, Booking, Delegation, Listing, Room, Season, utcnow
from app.services import access, availability, cancellations, inventory, ledger
from app.services import booking as bookings
from app.services.contracts import amendments_of
from app.services.errors import DomainError
from app.services.seasons import current_season, season_for_year
from app.web.common import actor, flash_error, role_required
from app.web.converters import int32
from app.web.host.forms import BlockForm, HostCancelForm
from app.web.host.routes import bp

CELL_STATES = {"booked": "booked", "held": "held", "host_block": "blocked", "host_cancelled": "host_cancelled"}


def host_beds(host_id: int) -> list[tuple[Bed, Room, Listing]]:
    return list(db.session.execute(
        select(Bed, Room, Listing).join(Room, Room.id == Bed.room_id).join(Listing, Listing.id == Room.listing_id)
        .where(Listing.host_id == host_id, Bed.removed_at.is_(None))
        .order_by(Listing.id, Room.id, Bed.id)).tuples().all())


def calendar_cells(bed_ids: list[int], season: Season) -> dict[tuple[int, date], dict]:
    """(bed, night) -> state and delegation, for the bed-nights of the season that occupy their bed now."""
    rows = db.session.execute(
        select(BedNight.bed_id, BedNight.night, BedNight.state, BedNight.booking_id, Delegation.name)
        .outerjoin(Booking, Booking.id == BedNight.booking_id)
        .outerjoin(Delegation, Delegation.id == Booking.delegation_id)
        .where(BedNight.bed_id.in_(bed_ids), availability.occupies(utcnow()),
               BedNight.night >= season.first_night, BedNight.night <= season.last_night)).all()
    return {(bed_id, night): {"state": CELL_STATES[state], "booking_id": booking_id, "delegation": name}
            for bed_id, night, state, booking_id, name in rows}


def _block_form(prefix: str, beds, submitted: bool = False) -> BlockForm:
    form = BlockForm(prefix=prefix) if submitted else BlockForm(formdata=None, prefix=prefix)
    form.bed_id.choices = [SelectChoice(bed.id, f"{listing.title} · {room.name} · {bed.label}")
                           for bed, room, listing in beds]
    return form


def render_calendar(season: Season | None, status: int = 200, **forms):
    beds = host_beds(current_user.id)
    cells = calendar_cells([bed.id for bed, _r, _l in beds], season) if season else {}
    block = forms.get("block_form") or _block_form("block", beds)
    unblock = forms.get("unblock_form") or _block_form("unblock", beds)
    return render_template("host/calendar.html", season=season, beds=beds, cells=cells, block_form=block,
                           unblock_form=unblock), status


def _season_from_args() -> Season | None:
    year = request.args.get("year", type=int32)
    season = season_for_year(year) if year else current_season()
    if year and season is None:
        abort(404)
    return season


@bp.get("/calendar")
@role_required("host")
def calendar():
    """The host's beds × the season's nights: booked, held, blocked, host-cancelled or free."""
    return render_calendar(_season_from_args())


@bp.post("/calendar/block")
@role_required("host")
def block():
    """Take one of the host's own beds off the market for some nights."""
    return _change_block("block", inventory.block_nights, _("Nätterna är spärrade."))


@bp.post("/calendar/unblock")
@role_required("host")
def unblock():
    """Free the host's own blocked nights again."""
    return _change_block("unblock", inventory.unblock_nights, _("Spärren är borttagen."))


def _change_block(prefix: str, service, done: str):
    form = _block_form(prefix, host_beds(current_user.id), submitted=True)
    if not form.validate_on_submit():
        return render_calendar(current_season(), 422, **{f"{prefix}_form": form})
    try:
        service(actor(), form.bed_id.data, form.check_in.data, form.check_out.data)
    except DomainError as error:
        flash_error(error, form)
        return render_calendar(season_for_year(form.check_in.data.year) or current_season(), error.status,
                               **{f"{prefix}_form": form})
    flash(done, "success")
    return redirect(url_for("host.calendar", year=form.check_in.data.year))


@bp.get("/bookings")
@role_required("host")
def bookings_index():
    """The host's bookings, with their contracts and a way to cancel (a breach)."""
    rows = db.session.scalars(select(Booking).where(Booking.host_id == current_user.id)
                              .order_by(Booking.check_in, Booking.id)).all()
    return render_template("host/bookings.html", bookings=rows, cancellable=inventory.CANCELLABLE)


@bp.get("/bookings/<int:booking_id>")
@role_required("host")
def booking_page(booking_id):
    """One of the host's bookings: the contract (PDF), the guests, the coordinator's contact, and cancelling."""
    item = access.visible_booking(actor(), booking_id)
    return render_template("host/booking.html", booking=item, contract=item.contract,
                           amendments=amendments_of(item.contract.id) if item.contract else [],
                           current_ore=ledger.current_value_ore(item),
                           contacts=bookings.party_contacts(actor(), item),
                           cancellable=item.status in inventory.CANCELLABLE)


@bp.get("/contracts/<int:contract_id>.pdf")
@role_required("host")
def contract_pdf(contract_id):
    """The contract of one of the host's bookings as PDF, the same document the coordinator reads."""
    from app.models import Contract
    from app.services.contract_pdf import render_pdf
    contract = db.session.get(Contract, contract_id)
    if contract is None:
        abort(404)
    access.visible_booking(actor(), contract.booking_id)
    return Response(render_pdf(contract), mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{contract.number}.pdf"'})


@bp.get("/guests.csv")
@role_required("host")
def guests_csv():
    """The host's guest list as CSV (UTF-8 with BOM, semicolons), one row per booked bed-night."""
    from app.services.exports import host_guests_csv
    return Response(host_guests_csv(current_user.id), mimetype="text/csv", headers={
        "Content-Disposition": 'attachment; filename="gaster.csv"', "Content-Type": "text/csv; charset=utf-8"})


@bp.route("/bookings/<int:booking_id>/cancel", methods=["GET", "POST"])
@role_required("host")
def cancel_booking(booking_id):
    """Warn that a host cancellation is a breach, ask for a reason, then cancel."""
    item = access.visible_booking(actor(), booking_id)
    form = HostCancelForm()
    status = 422 if request.method == "POST" else 200
    if form.validate_on_submit():
        try:
            cancelled = cancellations.cancel_by_host(actor(), booking_id, form.reason.data)
        except DomainError as error:
            flash_error(error, form)
            status = error.status
        else:
            if cancelled.invoice_credited_ore:
                flash(_("Bokningen är avbokad. Fakturan på %(amount)s krediteras i sin helhet och du har fått en "
                        "prickning.", amount=kr(cancelled.invoice_credited_ore)), "info")
            else:
                flash(_("Bokningen är avbokad. Gästen får tillbaka allt som betalats, %(amount)s, och du har fått "
                        "en prickning.", amount=kr(cancelled.refund_ore)), "info")
            return redirect(url_for("host.bookings_index"))
    refund_ore, credit_ore = ledger.host_cancellation_ore(item)
    return render_template("host/cancel.html", booking=item, form=form, refund_ore=refund_ore,
                           credit_ore=credit_ore, cancellable=item.status in inventory.CANCELLABLE), status
