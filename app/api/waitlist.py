"""The waiting list: join, list, accept a reserved offer, cancel."""
from typing import Any

from app.api import api
from app.api.common import Body, current_actor, json_body, roles
from app.api.serializers import booking_json
from app.extensions import db
from app.models import Booking, Season, WaitlistEntry
from app.presenters import iso
from app.services import waitlist


def entry_json(entry: WaitlistEntry) -> dict:
    offer = db.session.get(Booking, entry.offer_booking_id) if entry.offer_booking_id else None
    return {
        "id": entry.id, "delegation_id": entry.delegation_id, "year": db.session.get_one(Season, entry.season_id).year,
        "check_in": iso(entry.check_in), "check_out": iso(entry.check_out), "beds": entry.beds,
        "max_walking_minutes": entry.max_walking_minutes, "max_price_ore": entry.max_price_ore,
        "status": entry.status, "created_at": iso(entry.created_at),
        "offer": ({"booking_id": offer.id, "listing_id": offer.listing_id, "total_ore": offer.total_ore,
                   "bed_ids": sorted({line.bed_id for line in offer.lines}), "status": offer.status,
                   "expires_at": iso(entry.offer_expires_at)} if offer is not None else None),
    }


@api.post("/waitlist")
@roles("coordinator")
def join_waitlist():
    """Wait for N beds of one listing for a stay; freed beds are offered oldest entry first."""
    body = Body(json_body())
    values: dict[str, Any] = {
              "delegation_id": body.int("delegation_id"), "year": body.int("year"),
              "check_in": body.date("check_in"), "check_out": body.date("check_out"),
              "beds": body.int("beds"),
              "max_walking_minutes": body.int("max_walking_minutes", required=False),
              "max_price_ore": body.int("max_price_ore", required=False)}
    body.done()
    return entry_json(waitlist.join(current_actor(), **values)), 201


@api.get("/waitlist")
@roles("coordinator")
def list_waitlist():
    """The coordinator's waiting-list entries and their offers, newest first."""
    return {"entries": [entry_json(e) for e in waitlist.entries_for(current_actor())]}


@api.post("/waitlist/<int:entry_id>/accept")
@roles("coordinator")
def accept_waitlist_offer(entry_id):
    """Accept a reserved offer: the binding contract is formed and the beds are booked on invoice."""
    body = Body(json_body())
    accept = body.bool("accept_contract", required=False)
    body.done()
    booking = waitlist.accept_offer(current_actor(), entry_id, accept_contract=accept is True)
    return {"entry": entry_json(db.session.get_one(WaitlistEntry, entry_id)), "booking": booking_json(booking)}


@api.post("/waitlist/<int:entry_id>/cancel")
@roles("coordinator")
def cancel_waitlist_entry(entry_id):
    """Leave the waiting list; a pending offer is declined and goes to the next entry."""
    return entry_json(waitlist.cancel(current_actor(), entry_id))
