"""iCalendar feeds (RFC 5545) for hosts and delegations, behind secret URLs."""
from __future__ import annotations

from datetime import UTC, datetime

from icalendar import Calendar, Event
from sqlalchemy import select

from app.extensions import db
from app.models import Booking, Delegation, HostProfile, Listing


def _calendar(name: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", "-//Sängplats//Almedalen bookings//SV")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    return cal


def _event(booking: Booking, summary: str) -> Event:
    event = Event()
    event.add("uid", f"booking-{booking.id}@sangplats.se")
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", booking.check_in)
    event.add("dtend", booking.check_out)
    event.add("summary", summary)
    listing = db.session.get_one(Listing, booking.listing_id)
    event.add("location", f"{listing.address}, {listing.postal_code} Gotland")
    beds = len({line.bed_id for line in booking.live_lines})
    number = booking.contract.number if booking.contract else ""
    event.add("description", f"{beds} bäddar/beds · {booking.status} · {number}")
    event.add("status", "CONFIRMED" if booking.status == "confirmed" else "TENTATIVE")
    return event


LIVE = ("confirmed", "awaiting_payment", "completed")


def host_feed(token: str) -> bytes | None:
    profile = db.session.scalar(select(HostProfile).where(HostProfile.calendar_token == token))
    if profile is None:
        return None
    cal = _calendar("Sängplats – värd")
    for booking in db.session.scalars(select(Booking).where(
            Booking.host_id == profile.user_id, Booking.status.in_(LIVE)).order_by(Booking.check_in)):
        cal.add_component(_event(booking, f"{booking.delegation.name}: {booking.listing.title}"))
    return cal.to_ical()


def delegation_feed(token: str) -> bytes | None:
    delegation = db.session.scalar(select(Delegation).where(Delegation.calendar_token == token))
    if delegation is None:
        return None
    cal = _calendar(f"Sängplats – {delegation.name}")
    for booking in db.session.scalars(select(Booking).where(
            Booking.delegation_id == delegation.id, Booking.status.in_(LIVE)).order_by(Booking.check_in)):
        cal.add_component(_event(booking, f"Almedalen: {booking.listing.title}"))
    return cal.to_ical()
