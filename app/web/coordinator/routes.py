"""Coordinator pages: delegations, search, contract review, bookings, cancellation, rooming."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField

from app.extensions import db
from app.models import Booking, Contract, Delegation, HostProfile
from app.models.types import utcnow
from app.services import accounts, cancellations, delegations, exports, flags, itineraries, rehousing, vetting
from app.services import booking as booking_service
from app.services.access import own_booking, owned_delegation
from app.services.base import local_date
from app.services.cancellations import GuestCancellation, cancel_lines
from app.services.contract_pdf import render_pdf
from app.services.contracts import amendments_of
from app.services.errors import DomainError, NotFound
from app.services.inventory import CANCELLABLE
from app.services.ledger import current_value_ore
from app.services.rooming import assign_rooming
from app.services.seasons import current_season
from app.web.common import actor, flash_error, page_number, required, role_required
from app.web.coordinator import presenters
from app.web.coordinator.forms import (
    BookForm,
    CancelLinesForm,
    ConfirmForm,
    ContactForm,
    DelegationForm,
    FlagForm,
    MemberForm,
    ReportForm,
    SearchForm,
    StayForm,
    rooming_form,
)
from app.web.formatting import kr

bp = Blueprint("coordinator", __name__, url_prefix="/coordinator")


@bp.before_request
@role_required("coordinator")
def require_coordinator():
    """Every page here is for signed-in coordinators only."""


def _my_delegations() -> list[Delegation]:
    return list(db.session.scalars(
        select(Delegation).where(Delegation.coordinator_id == current_user.id).order_by(Delegation.id)))


def _my_bookings() -> list[Booking]:
    return list(db.session.scalars(
        select(Booking).where(Booking.coordinator_id == current_user.id).order_by(Booking.id.desc())))


def _own_booking(booking_id: int) -> Booking:
    """The signed-in coordinator's booking, else 404 (a host may see it through its own pages, not these)."""
    return own_booking(actor(), booking_id)


def _flash_every_message(error: DomainError) -> None:
    """Flash each message of a refusal whose fields are not on the page (the rooming list's items)."""
    messages = [m for field_messages in getattr(error, "errors", {}).values() for m in field_messages]
    for message in messages or [error.message]:
        flash(message, "error")


def _after_booking(booking: Booking) -> str:
    if booking.payment_method == "card" and "payments.pay" in current_app.view_functions:
        return url_for("payments.pay", booking_id=booking.id)
    return url_for("coordinator.booking", booking_id=booking.id)


@bp.get("/")
def dashboard():
    """Show the coordinator's delegations, bookings and the next step."""
    mine, bookings = _my_delegations(), _my_bookings()
    live = [b for b in bookings if b.status in CANCELLABLE]
    return render_template("coordinator/dashboard.html", delegations=mine, bookings=bookings[:10],
                           has_members=any(d.members for d in mine), has_booking=bool(live),
                           season=current_season())


@bp.route("/contact", methods=["GET", "POST"])
def contact():
    """The coordinator's phone, which the host of a confirmed booking sees."""
    form = ContactForm(data={"phone": current_user.phone}) if request.method == "GET" else ContactForm()
    status = 422 if request.method == "POST" else 200
    if form.validate_on_submit():
        try:
            accounts.set_phone(actor(), form.phone.data)
        except DomainError as error:
            flash_error(error, form)
            status = error.status
        else:
            flash(_("Dina kontaktuppgifter är sparade."), "success")
            return redirect(url_for("coordinator.dashboard"))
    return render_template("coordinator/contact.html", form=form), status


@bp.route("/delegations/new", methods=["GET", "POST"])
def new_delegation():
    """Register the organisation's delegation."""
    form, status = DelegationForm(), 200
    if form.validate_on_submit():
        try:
            delegation = delegations.create_delegation(
                actor(), form.name.data, form.organisation_number.data,
                invoice_details={name: getattr(form, name).data for name in delegations.INVOICE_FIELDS})
        except DomainError as error:
            flash_error(error, form)
            status = error.status
        else:
            flash(_("Delegationen är skapad. Lägg till medlemmarna."), "success")
            return redirect(url_for("coordinator.delegation", delegation_id=delegation.id))
    elif form.is_submitted():
        status = 422
    return render_template("coordinator/delegation_new.html", form=form), status


@bp.get("/delegations/<int:delegation_id>")
def delegation(delegation_id):
    """Show a delegation: members, calendar feed, rooming list."""
    return _delegation_page(owned_delegation(actor(), delegation_id), MemberForm())


def _delegation_page(item: Delegation, form: MemberForm, status: int = 200):
    """The delegation page, with each member's private itinerary link (on BASE_URL, as the member's mail has it)."""
    links = {m.id: itineraries.itinerary_url(m) for m in item.members}
    return render_template("coordinator/delegation.html", delegation=item, form=form, itinerary_urls=links), status


@bp.post("/delegations/<int:delegation_id>/members")
def add_member(delegation_id):
    """Add a member to the delegation."""
    item = owned_delegation(actor(), delegation_id)
    form, status = MemberForm(), 422
    if form.validate_on_submit():
        try:
            member = delegations.add_member(actor(), delegation_id, form.name.data, form.email.data)
        except DomainError as error:
            flash_error(error, form)
            status = error.status
        else:
            flash(_("%(name)s är tillagd.", name=member.name), "success")
            return redirect(url_for("coordinator.delegation", delegation_id=delegation_id))
    return _delegation_page(item, form, status)


def _member_or_404(item, member_id: int):
    member = next((m for m in item.members if m.id == member_id), None)
    if member is None:
        raise NotFound(_("Deltagaren finns inte."))
    return member


@bp.route("/delegations/<int:delegation_id>/members/<int:member_id>", methods=["GET", "POST"])
def member(delegation_id, member_id):
    """Rename a member or change the e-mail (the rooming list follows)."""
    item = owned_delegation(actor(), delegation_id)
    person = _member_or_404(item, member_id)
    form = MemberForm(obj=person) if request.method == "GET" else MemberForm()
    status = 200 if request.method == "GET" else 422
    if form.validate_on_submit():
        try:
            delegations.update_member(actor(), delegation_id, member_id, name=form.name.data, email=form.email.data)
        except DomainError as error:
            flash_error(error, form)
            status = error.status
        else:
            flash(_("Uppgifterna för %(name)s är sparade.", name=form.name.data.strip()), "success")
            return redirect(url_for("coordinator.delegation", delegation_id=delegation_id))
    return render_template("coordinator/member.html", delegation=item, member=person, form=form,
                           remove_form=ConfirmForm(formdata=None)), status


@bp.post("/delegations/<int:delegation_id>/members/<int:member_id>/remove")
def remove_member(delegation_id, member_id):
    """Remove a member who has no bed."""
    item = owned_delegation(actor(), delegation_id)
    person = _member_or_404(item, member_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            delegations.remove_member(actor(), delegation_id, member_id)
        except DomainError as error:
            flash(error.message, "error")
            return render_template("coordinator/member.html", delegation=item, member=person,
                                   form=MemberForm(obj=person), remove_form=form), error.status
        flash(_("%(name)s är borttagen ur delegationen.", name=person.name), "success")
        return redirect(url_for("coordinator.delegation", delegation_id=delegation_id))
    return redirect(url_for("coordinator.member", delegation_id=delegation_id, member_id=member_id))


@bp.get("/delegations/<int:delegation_id>/rooming.csv")
def rooming_csv(delegation_id):
    """Download the rooming list as CSV (the same bytes as the API's)."""
    owned_delegation(actor(), delegation_id)
    return Response(exports.rooming_csv(delegation_id), headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="rooming-{delegation_id}.csv"'})


@bp.get("/delegations/<int:delegation_id>/block")
def block(delegation_id):
    """Show every booked bed of the delegation night by night, and the empty slots."""
    item = owned_delegation(actor(), delegation_id)
    return render_template("coordinator/block.html", delegation=item, view=presenters.block_view(delegation_id))


@bp.get("/search")
def search():
    """Search free beds for a stay in the latest season, 20 listings a page, and proposals for the whole group."""
    season = current_season()
    form, found, status = SearchForm(request.args), None, 200
    if season is not None and not request.args:
        form.check_in.data, form.check_out.data, form.beds.data = season.first_night, season.check_out_day, 1
    elif season is not None and form.validate():
        try:
            found = presenters.search_view(season.year, form, page_number())
        except DomainError as error:
            flash_error(error, form)
            status = error.status
    elif season is not None:
        status = 422
    return render_template("coordinator/search.html", form=form, season=season, found=found), status


@bp.get("/review")
def review():
    """Show the full contract for the chosen beds and stay, to accept before booking."""
    stay = StayForm(request.args)
    if not stay.validate():
        flash(_("Välj bäddar och datum i sökningen först."), "error")
        return redirect(url_for("coordinator.search"))
    form = BookForm(formdata=None, check_in=stay.check_in.data, check_out=stay.check_out.data,
                    bed_ids=stay.bed_ids.data)
    return _render_review(form, stay.bed_ids.data, stay.check_in.data, stay.check_out.data)


@bp.post("/review")
def book():
    """Book the reviewed beds under the binding contract."""
    form = BookForm()
    _delegation_choices(form)
    if not form.validate_on_submit():
        return _render_review(form, form.bed_ids.data or [], form.check_in.data, form.check_out.data, 422)
    try:
        created = booking_service.create_booking(
            actor(), delegation_id=form.delegation_id.data, bed_ids=form.bed_ids.data,
            check_in=form.check_in.data, check_out=form.check_out.data,
            accept_contract=form.accept_contract.data, payment_method=form.payment_method.data)
    except DomainError as error:
        if error.code != "bed_nights_taken":
            flash_error(error, form)
        return _render_review(form, form.bed_ids.data, form.check_in.data, form.check_out.data, error.status,
                              error=error)
    flash(_("Bokningen är gjord. Avtal %(number)s är bindande.", number=required(created.contract).number), "success")
    return redirect(_after_booking(created))


def _delegation_choices(form: BookForm) -> None:
    form.delegation_id.choices = [(d.id, f"{d.name} ({d.organisation_number})") for d in _my_delegations()]


def _render_review(form: BookForm, bed_ids, check_in, check_out, status: int = 200, error=None):
    """The review page, or a plain refusal when the beds or stay cannot be previewed at all."""
    _delegation_choices(form)
    if not bed_ids or check_in is None or check_out is None:
        return render_template("coordinator/review.html", form=form, preview=None, conflicts=[]), status
    try:
        preview = presenters.contract_preview(bed_ids, check_in, check_out)
    except DomainError as refusal:
        flash_error(refusal)
        return render_template("coordinator/review.html", form=form, preview=None, conflicts=[]), refusal.status
    conflicts = presenters.conflict_list(error, preview) if error is not None else []
    return render_template("coordinator/review.html", form=form, preview=preview, conflicts=conflicts), status


@bp.get("/bookings")
def bookings():
    """List the coordinator's bookings."""
    return render_template("coordinator/bookings.html", bookings=_my_bookings())


@bp.get("/bookings/<int:booking_id>")
def booking(booking_id):
    """Show a booking: status, lines, total, invoice and contract."""
    item = _own_booking(booking_id)
    from app.services import invoices
    from app.services.base import local_date, now_or
    return render_template("coordinator/booking.html", booking=item, contract=item.contract,
                           invoice=invoices.booking_invoice_json(item, local_date(now_or(None))),
                           amendments=amendments_of(item.contract.id) if item.contract else [],
                           current_ore=current_value_ore(item),
                           contacts=booking_service.party_contacts(actor(), item),
                           host_suspended=vetting.is_host_suspended(item.host_id),
                           can_pay="payments.pay" in current_app.view_functions,
                           cancellable=item.status in CANCELLABLE)


@bp.get("/contracts/<int:contract_id>.pdf")
def contract_pdf(contract_id):
    """Download the contract as PDF (only the booking's coordinator)."""
    contract = db.session.get(Contract, contract_id)
    if contract is None:
        raise NotFound(_("Avtalet finns inte."))
    _own_booking(contract.booking_id)
    return Response(render_pdf(contract), mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{contract.number}.pdf"'})


@bp.route("/bookings/<int:booking_id>/cancel", methods=["GET", "POST"])
def cancel(booking_id):
    """Show each remaining bed-night and what the contract gives back today; cancel the ticked ones, or all."""
    item, status = _own_booking(booking_id), 200
    form, lines_form = ConfirmForm(formdata=None), CancelLinesForm(formdata=None)
    if request.method == "POST":
        partial = request.form.get("part") == "lines"
        used: ConfirmForm | CancelLinesForm
        if partial:
            used = lines_form = CancelLinesForm()
        else:
            used = form = ConfirmForm()
        if used.validate_on_submit():
            try:
                done = cancel_lines(actor(), booking_id, lines_form.lines.data if partial else None)
            except DomainError as error:
                flash_error(error, used)
                status = error.status
            else:
                _flash_cancelled(done)
                return redirect(url_for("coordinator.booking", booking_id=booking_id))
        elif "csrf_token" in used.errors:
            flash(_("Formuläret hade gått ut. Försök igen."), "error")
            status = 400
        else:
            status = 422
    return render_template("coordinator/cancel.html", booking=item, form=form, lines_form=lines_form,
                           view=presenters.cancel_view(item, local_date(utcnow())),
                           cancellable=item.status in CANCELLABLE), status


def _flash_cancelled(done: GuestCancellation) -> None:
    if done.amendment is not None and done.booking.status != "cancelled_by_guest":
        money = (_("Fakturan krediteras med %(amount)s.", amount=kr(done.invoice_credit_ore))
                 if done.booking.payment_method == "invoice" else
                 _("Återbetalning: %(amount)s.", amount=kr(done.refund_ore)))
        flash(_("Ändring %(number)s: %(count)s bäddnätter avbokade. %(money)s", number=done.amendment.number,
                count=len(done.lines), money=money), "success")
    elif done.invoice_credit_ore:
        flash(_("Bokningen är avbokad. Fakturan krediteras med %(amount)s.", amount=kr(done.invoice_credit_ore)),
              "success")
    else:
        flash(_("Bokningen är avbokad. Återbetalning: %(amount)s.", amount=kr(done.refund_ore)), "success")


@bp.route("/bookings/<int:booking_id>/rooming", methods=["GET", "POST"])
def rooming(booking_id):
    """Put the delegation's members in the booked beds."""
    item = _own_booking(booking_id)
    beds = presenters.booked_beds(item)
    form, status = rooming_form(beds, item.delegation.members, presenters.current_rooming(item)), 200
    if form.validate_on_submit():
        wanted = [{"bed_id": bed_id, "member_id": int(form[f"bed_{bed_id}"].data or 0) or None}
                  for bed_id, _label in beds]
        try:
            assign_rooming(actor(), booking_id, wanted)
        except DomainError as error:
            _flash_every_message(error)
            status = error.status
        else:
            flash(_("Rumsfördelningen är sparad."), "success")
            return redirect(url_for("coordinator.rooming", booking_id=booking_id))
    elif form.is_submitted():
        status = 422
    return render_template("coordinator/rooming.html", booking=item, form=form, beds=beds), status


@bp.route("/bookings/<int:booking_id>/flag", methods=["GET", "POST"])
def flag(booking_id):
    """Report the booking's host to the administrators."""
    item, form, status = _own_booking(booking_id), FlagForm(), 200
    if form.validate_on_submit():
        try:
            flags.create_flag(actor(), host_id=item.host_id, category=form.category.data,
                              description=form.description.data, booking_id=booking_id)
        except DomainError as error:
            flash_error(error, form)
            status = error.status
        else:
            flash(_("Tack. Administratörerna granskar din anmälan."), "success")
            return redirect(url_for("coordinator.booking", booking_id=booking_id))
    elif form.is_submitted():
        status = 422
    return render_template("coordinator/flag.html", booking=item, form=form), status


# ---------------------------------------------------------------------------------------------
# A rehousing offer (issue 17): the contract of each part to accept, or decline
# ---------------------------------------------------------------------------------------------


class OfferAcceptForm(FlaskForm):
    accept_contract = BooleanField(_l("Jag godkänner det bindande avtalet för min delegation"))


def _offer_view(item: Booking) -> dict:
    parts = [db.session.get_one(Booking, part_id) for part_id in rehousing.offer_part_ids(item)]
    previews = []
    for part in parts:
        profile = db.session.get(HostProfile, part.host_id)
        previews.append({
            "booking": part, "listing": part.listing, "check_in": part.check_in, "check_out": part.check_out,
            "host_legal_name": profile.legal_name if profile else "",
            "lines": [{"night": line.night, "bed": f"{line.bed.room.name} / {line.bed.label}",
                       "price_ore": line.price_ore or 0} for line in part.lines if line.state in ("held", "booked")],
            "total_ore": part.total_ore})
    breached = db.session.get_one(Booking, item.rehoused_from_id) if item.rehoused_from_id else None
    return {"parts": previews, "breached": breached, "total_ore": sum(part.total_ore for part in parts),
            "open": all(part.status == "offered" for part in parts)}


@bp.get("/bookings/<int:booking_id>/offer")
def rehousing_offer(booking_id):
    """A rehousing offer: the beds held, each part's contract to accept, and the decline button."""
    item = _own_booking(booking_id)
    if item.rehoused_from_id is None:
        raise NotFound(_("Bokningen är inget erbjudande om ersättningsboende."))
    return render_template("coordinator/offer.html", booking=item, view=_offer_view(item), form=OfferAcceptForm(),
                           decline_form=ConfirmForm(), season=item.season)


@bp.post("/bookings/<int:booking_id>/offer/accept")
def accept_rehousing_offer(booking_id):
    item = _own_booking(booking_id)
    form = OfferAcceptForm()
    if not form.validate_on_submit():
        flash(_("Formuläret hade gått ut. Försök igen."), "error")
        return redirect(url_for("coordinator.rehousing_offer", booking_id=booking_id))
    try:
        parts = rehousing.accept(actor(), item.id, accept_contract=bool(form.accept_contract.data))
    except DomainError as error:
        flash_error(error, form)
        return render_template("coordinator/offer.html", booking=item, view=_offer_view(item), form=form,
                               decline_form=ConfirmForm(), season=item.season), error.status
    if parts[0].status == "awaiting_payment":
        flash(_("Erbjudandet är antaget och avtalet bildat. Betala med kort för att bekräfta bokningen."), "success")
    else:
        flash(_("Erbjudandet är antaget: bokningen är bekräftad och avtalet bildat."), "success")
    return redirect(url_for("coordinator.booking", booking_id=booking_id))


@bp.post("/bookings/<int:booking_id>/offer/decline")
def decline_rehousing_offer(booking_id):
    item = _own_booking(booking_id)
    if not ConfirmForm().validate_on_submit():
        flash(_("Formuläret hade gått ut. Försök igen."), "error")
        return redirect(url_for("coordinator.rehousing_offer", booking_id=booking_id))
    try:
        rehousing.decline(actor(), item.id)
    except DomainError as error:
        flash(error.message, "error")
        return redirect(url_for("coordinator.rehousing_offer", booking_id=booking_id)), 303
    flash(_("Ni har tackat nej till erbjudandet; bäddarna är släppta."), "success")
    return redirect(url_for("coordinator.bookings"))


@bp.route("/bookings/<int:booking_id>/report", methods=["GET", "POST"])
def report(booking_id):
    """Report bed-nights missing or not as described on arrival: refunded in full at once, a flag, rehousing."""
    item, status = _own_booking(booking_id), 200
    form = ReportForm()
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                done = cancellations.report_on_arrival(actor(), booking_id, form.lines.data or [],
                                                       form.category.data or "", form.description.data or "")
            except DomainError as error:
                flash_error(error, form)
                status = error.status
            else:
                money = (_("Fakturan krediteras med %(amount)s.", amount=kr(done.invoice_credit_ore))
                         if item.payment_method == "invoice" else
                         _("%(amount)s återbetalas till kortet.", amount=kr(done.refund_ore)))
                flash(_("Anmälan är mottagen. %(money)s", money=money), "success")
                if done.rehousing is not None:
                    return redirect(url_for("coordinator.rehousing_offer", booking_id=done.rehousing.booking_ids[0]))
                return redirect(url_for("coordinator.booking", booking_id=booking_id))
        else:
            status = 400 if "csrf_token" in form.errors else 422
    lines = [line for line in item.lines if line.state in ("booked", "held")]
    return render_template("coordinator/report.html", booking=item, form=form, lines=lines), status
