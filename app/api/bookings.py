"""Delegations, bookings and contracts."""
from typing import Any

from flask import Response, request
from flask_babel import gettext as _
from sqlalchemy import or_, select

from app.api import api
from app.api.common import Body, answer_once, current_actor, json_body, roles
from app.api.serializers import amendment_json, booking_json, cancellation_json, contract_json
from app.extensions import db
from app.http_problems import problem
from app.models import Booking, Contract
from app.services import access, cancellations, contracts, delegations, exports, itineraries, rehousing, rooming
from app.services import booking as booking_service
from app.services.errors import NotFound, ValidationFailed
from app.services.links import external_url


def member_json(member) -> dict:
    """A member as GET /delegations/{id} lists them, with the private link to their itinerary."""
    return {"id": member.id, "name": member.name, "email": member.email,
            "itinerary_url": itineraries.itinerary_url(member)}


def delegation_json(delegation) -> dict:
    return {
        "id": delegation.id, "name": delegation.name, "organisation_number": delegation.organisation_number,
        "buyer_reference": delegation.buyer_reference, "invoice_email": delegation.invoice_email,
        "address": delegation.address, "postal_code": delegation.postal_code, "city": delegation.city,
        "members": [member_json(m) for m in delegation.members],
        "calendar_url": external_url("public.delegation_calendar", token=delegation.calendar_token),
        "rooming_csv_url": external_url("api.rooming_csv", delegation_id=delegation.id),
    }


@api.post("/delegations")
@roles("coordinator")
def create_delegation():
    """Register a delegation."""
    body = Body(json_body())
    name, number = body.str("name", max_length=200), body.str("organisation_number", max_length=20)
    details = _invoice_details(body)
    body.done()
    return delegation_json(delegations.create_delegation(current_actor(), name, number, invoice_details=details)), 201


def _invoice_details(body: Body) -> dict[str, str | None]:
    """The optional invoice details of a delegation body (only those sent)."""
    return {name: body.str(name, False, max_length=delegations.INVOICE_LIMITS[name])
            for name in delegations.INVOICE_FIELDS if name in body.data}


@api.patch("/delegations/<int:delegation_id>")
@roles("coordinator")
def patch_delegation(delegation_id):
    """Change a delegation's invoice details (buyer reference, invoice e-mail, postal address)."""
    access.owned_delegation(current_actor(), delegation_id)
    body = Body(json_body())
    details = _invoice_details(body)
    body.done()
    return delegation_json(delegations.update_invoice_details(current_actor(), delegation_id, details))


@api.get("/delegations")
@roles("coordinator")
def list_delegations():
    """The coordinator's delegations."""
    from app.models import Delegation
    rows = db.session.scalars(select(Delegation).where(Delegation.coordinator_id == current_actor().user_id))
    return {"delegations": [delegation_json(d) for d in rows]}


@api.post("/delegations/<int:delegation_id>/members")
@roles("coordinator")
def add_member(delegation_id):
    """Add a member to a delegation."""
    access.owned_delegation(current_actor(), delegation_id)
    body = Body(json_body())
    name, email = body.str("name", max_length=200), body.str("email", max_length=254)
    body.done()
    member = delegations.add_member(current_actor(), delegation_id, name, email)
    return {**member_json(member), "delegation_id": delegation_id}, 201


@api.patch("/delegations/<int:delegation_id>/members/<int:member_id>")
@roles("coordinator")
def update_member(delegation_id, member_id):
    """Rename a member or change the e-mail."""
    access.owned_delegation(current_actor(), delegation_id)
    body = Body(json_body())
    name = body.str("name", False, max_length=200)
    email = body.str("email", False, max_length=254)
    body.done()
    member = delegations.update_member(current_actor(), delegation_id, member_id, name=name, email=email)
    return {**member_json(member), "delegation_id": delegation_id}


@api.delete("/delegations/<int:delegation_id>/members/<int:member_id>")
@roles("coordinator")
def remove_member(delegation_id, member_id):
    """Remove a member who has no bed."""
    access.owned_delegation(current_actor(), delegation_id)
    delegations.remove_member(current_actor(), delegation_id, member_id)
    return {"id": member_id, "delegation_id": delegation_id, "removed": True}


@api.get("/delegations/<int:delegation_id>")
@roles("coordinator")
def get_delegation(delegation_id):
    """A delegation with its members."""
    return delegation_json(access.owned_delegation(current_actor(), delegation_id))


@api.get("/delegations/<int:delegation_id>/unassigned")
@roles("coordinator")
def unassigned(delegation_id):
    """Per night of the delegation's bookings, the booked beds without a member and the members without a bed."""
    access.owned_delegation(current_actor(), delegation_id)
    return {"nights": rooming.unassigned(delegation_id)}


@api.get("/delegations/<int:delegation_id>/rooming.csv")
@roles("coordinator")
def rooming_csv(delegation_id):
    """The rooming list: one row per booked bed-night."""
    access.owned_delegation(current_actor(), delegation_id)
    return Response(exports.rooming_csv(delegation_id), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="rooming-{delegation_id}.csv"',
        "Content-Type": "text/csv; charset=utf-8"})


def _create_booking(actor, values):
    booking = booking_service.create_booking(actor, **values)
    return 201, booking_json(booking)


@api.post("/bookings")
@roles("coordinator")
def create_booking():
    """Book beds of one listing for a stay: all or nothing, under a binding contract."""
    actor = current_actor()
    body = Body(json_body())
    values: dict[str, Any] = {"delegation_id": body.int("delegation_id"), "bed_ids": body.int_list("bed_ids"),
              "check_in": body.date("check_in"), "check_out": body.date("check_out"),
              "accept_contract": body.bool("accept_contract", required=False) or False,
              "payment_method": body.str("payment_method", max_length=10)}
    if body.errors and values["delegation_id"] is not None:
        access.owned_delegation(actor, values["delegation_id"])  # 404 before 422; else the service checks
    body.done()
    return answer_once(actor, values, lambda: _create_booking(actor, values))


@api.get("/bookings")
@roles("coordinator", "host", "admin")
def list_bookings():
    """The coordinator's own bookings, or the bookings on a host's beds."""
    actor = current_actor()
    query = select(Booking).order_by(Booking.id.desc())
    if not actor.is_admin:
        query = query.where(or_(Booking.coordinator_id == actor.user_id, Booking.host_id == actor.user_id))
    return {"bookings": [booking_json(b) for b in db.session.scalars(query.limit(1000))]}


@api.get("/bookings/<int:booking_id>")
@roles("coordinator", "host", "admin")
def get_booking(booking_id):
    """One booking with its lines, contract, invoice and payments."""
    item = access.visible_booking(current_actor(), booking_id)
    return {**booking_json(item), **booking_service.party_contacts(current_actor(), item)}


@api.post("/bookings/<int:booking_id>/cancel")
@roles("coordinator")
def cancel_booking(booking_id):
    """Cancel as the guest, under the contract's terms: the whole booking, or only the bed-nights in `lines`."""
    access.visible_booking(current_actor(), booking_id)
    data = request.get_json(silent=True) if request.get_data() else {}
    if not isinstance(data, dict):
        raise ValidationFailed({"body": [_("Skicka ett JSON-objekt med Content-Type: application/json.")]})
    body = Body(data)
    lines = body.bed_nights("lines", required=False)
    body.done()
    return cancellation_json(cancellations.cancel_lines(current_actor(), booking_id, lines))


@api.post("/bookings/<int:booking_id>/host-cancel")
@roles("host")
def host_cancel_booking(booking_id):
    """Cancel as the host: a breach, with a full refund, locked beds and a strike."""
    access.visible_booking(current_actor(), booking_id)
    data = request.get_json(silent=True)
    reason = data["reason"] if isinstance(data, dict) and isinstance(data.get("reason"), str) else ""
    booking = cancellations.cancel_by_host(current_actor(), booking_id, reason)
    offer = rehousing.current_offer(booking.id)
    return {"id": booking.id, "status": booking.status, "refund_ore": booking.refund_ore,
            "rehousing": offer.as_json() if offer else None}


@api.post("/bookings/<int:booking_id>/report")
@roles("coordinator")
def report_on_arrival(booking_id):
    """Report bed-nights missing or not as described on arrival: refunded in full, a flag, a rehousing offer."""
    access.visible_booking(current_actor(), booking_id)
    body = Body(json_body())
    lines = body.bed_nights("lines")
    category = body.str("category")
    description = body.str("description", max_length=5000)
    body.done()
    done = cancellations.report_on_arrival(current_actor(), booking_id, lines or [], category, description)
    return {"id": done.booking.id, "status": done.booking.status, "refund_ore": done.refund_ore,
            "invoice_credit_ore": done.invoice_credit_ore,
            "reported_lines": [{"bed_id": line["bed_id"], "night": line["night"], "price_ore": line["price_ore"]}
                               for line in done.lines],
            "amendment": amendment_json(done.amendment), "flag_id": done.flag_id,
            "rehousing": done.rehousing.as_json() if done.rehousing else None}


@api.post("/bookings/<int:booking_id>/accept")
@roles("coordinator")
def accept_rehousing(booking_id):
    """Accept a rehousing offer (every part of it): a booking with its own contract naming the breached one."""
    access.visible_booking(current_actor(), booking_id)
    body = Body(json_body())
    accept = body.bool("accept_contract", required=False)
    body.done()
    parts = rehousing.accept(current_actor(), booking_id, accept_contract=accept is True)
    first = next(part for part in parts if part.id == booking_id)
    return {**booking_json(first), "booking_ids": [part.id for part in parts]}


@api.post("/bookings/<int:booking_id>/decline")
@roles("coordinator")
def decline_rehousing(booking_id):
    """Decline a rehousing offer: its beds are released at once."""
    access.visible_booking(current_actor(), booking_id)
    parts = rehousing.decline(current_actor(), booking_id)
    first = next(part for part in parts if part.id == booking_id)
    return {**booking_json(first), "booking_ids": [part.id for part in parts]}


@api.put("/bookings/<int:booking_id>/rooming")
@roles("coordinator")
def put_rooming(booking_id):
    """Assign members to the booked beds."""
    access.visible_booking(current_actor(), booking_id)
    booking = rooming.assign_rooming(current_actor(), booking_id, json_body().get("assignments"))
    return booking_json(booking)


def visible_contract(contract_id: int) -> Contract:
    contract = db.session.get(Contract, contract_id)
    if contract is None:
        raise NotFound(_("Avtalet finns inte."))
    access.visible_booking(current_actor(), contract.booking_id)
    return contract


@api.get("/contracts/verify")
def verify_contract():
    """Check a contract's number and SHA-256 (public)."""
    return contracts.verify(request.args.get("number", ""), request.args.get("sha256", "")).as_json()


def _invoice_of(booking_id: int):
    from app.services import invoices
    booking = access.visible_booking(current_actor(), booking_id)
    invoice = invoices.invoice_for_booking(booking.id)
    if invoice is None:
        raise NotFound(_("Bokningen har ingen faktura."))
    return invoices.invoice_document(invoice)


@api.get("/bookings/<int:booking_id>/invoice.pdf")
@roles("coordinator", "host", "admin")
def invoice_pdf(booking_id):
    """The booking's invoice as PDF (invoice bookings)."""
    from app.services.invoice_pdf import render
    document = _invoice_of(booking_id)
    return Response(render(document), mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{document.number}.pdf"', "Cache-Control": "no-store"})


@api.get("/bookings/<int:booking_id>/invoice.xml")
@roles("coordinator", "host", "admin")
def invoice_xml(booking_id):
    """The booking's invoice as a Peppol BIS Billing 3.0 UBL 2.1 Invoice."""
    from app.services.einvoice import build
    document = _invoice_of(booking_id)
    return Response(build(document), mimetype="application/xml", headers={
        "Content-Disposition": f'inline; filename="{document.number}.xml"', "Cache-Control": "no-store"})


@api.get("/contracts/<int:contract_id>")
@roles("coordinator", "host", "admin")
def get_contract(contract_id):
    """A contract: its parties, lines, hash and status."""
    return contract_json(visible_contract(contract_id))


@api.route("/contracts/<int:contract_id>", methods=["PUT", "PATCH", "DELETE"])
def contract_immutable(contract_id):
    """Contracts cannot be changed or deleted."""
    return problem(405, "method_not_allowed", _("Metoden är inte tillåten"),
                   _("Ett avtal kan inte ändras eller tas bort."))


@api.get("/contracts/<int:contract_id>/pdf")
@roles("coordinator", "host", "admin")
def contract_pdf(contract_id):
    """The contract as PDF."""
    from app.services.contract_pdf import render_pdf
    contract = visible_contract(contract_id)
    return Response(render_pdf(contract), mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{contract.number}.pdf"'})



