"""Rooming lists: who sleeps where, night by night, and the coordinator putting members in beds."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import gettext as _
from sqlalchemy import and_, func, select, update

from app.extensions import db
from app.models import LIVE_LINE_STATES, Bed, BedNight, Booking, Delegation, Listing, Member, Room
from app.services import audit, itineraries
from app.services.access import own_booking
from app.services.base import Actor, now_or, unit_of_work
from app.services.errors import Conflict, ValidationFailed
from app.services.inventory import CANCELLABLE, LIVE_STATUSES


@dataclass
class RoomingRow:
    night: date
    listing: str
    room: str
    bed: str
    bed_id: int
    member: str | None
    member_id: int | None
    booking_id: int


def rooming_rows(delegation_id: int) -> list[RoomingRow]:
    """Every booked (or held) bed-night of the delegation's live bookings."""
    rows = db.session.execute(
        select(BedNight.night, Listing.title, Room.name, Bed.label, Bed.id, Member.name, Member.id, Booking.id)
        .join(Booking, Booking.id == BedNight.booking_id)
        .join(Bed, Bed.id == BedNight.bed_id)
        .join(Room, Room.id == Bed.room_id)
        .join(Listing, Listing.id == Room.listing_id)
        .outerjoin(Member, Member.id == BedNight.member_id)
        .where(Booking.delegation_id == delegation_id, BedNight.state.in_(("booked", "held")),
               Booking.status.in_(("confirmed", "awaiting_payment", "completed")))
        .order_by(BedNight.night, Listing.title, Room.name, Bed.label)
    )
    return [RoomingRow(*row) for row in rows]


def assign_rooming(actor: Actor, booking_id: int, assignments: object, *,
                   now: datetime | None = None) -> Booking:
    """Put the delegation's members in the booked beds (member_id null empties a bed); each member whose
    itinerary this changes is e-mailed the new one."""
    now = now_or(now)
    booking = own_booking(actor, booking_id)
    if booking.status not in CANCELLABLE:
        raise Conflict(_("Bara en aktiv bokning har en rumsfördelning."), code="not_active")
    bed_ids = {line.bed_id for line in booking.live_lines}  # a bed whose nights were all cancelled is no more
    member_ids = {m.id for m in booking.delegation.members}
    errors: dict[str, list[str]] = {}
    wanted: dict[int, int | None] = {}
    for i, item in enumerate(assignments if isinstance(assignments, list) else [None]):
        if not isinstance(item, dict) or not isinstance(item.get("bed_id"), int):
            errors.setdefault("assignments", []).append(_("Rad %(index)s: ange bed_id och member_id.", index=i))
            continue
        bed_id, member_id = item["bed_id"], item.get("member_id")
        if bed_id not in bed_ids:
            errors.setdefault("assignments", []).append(_("Bädd %(bed)s ingår inte i bokningen.", bed=bed_id))
        elif member_id is not None and member_id not in member_ids:
            errors.setdefault("assignments", []).append(
                _("Deltagare %(member)s hör inte till delegationen.", member=member_id))
        else:
            wanted[bed_id] = member_id
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work():
        # One rooming change of a delegation at a time, so two bookings' lists cannot each pass the check.
        db.session.execute(select(Delegation.id).where(Delegation.id == booking.delegation_id).with_for_update())
        # Whoever slept in the booking before and whoever is put in it now may have a new itinerary.
        concerned = itineraries.members_in_booking(booking_id) | set(wanted.values())
        for bed_id, member_id in wanted.items():
            db.session.execute(update(BedNight).where(
                BedNight.booking_id == booking_id, BedNight.bed_id == bed_id,
                BedNight.state.in_(LIVE_LINE_STATES)).values(member_id=member_id))
        conflicts = member_double_bookings(booking.delegation_id)
        if conflicts:
            raise Conflict(_("En deltagare kan bara sova i en bädd per natt, i den här eller en annan av "
                             "delegationens bokningar."), code="member_double_booked", conflicts=conflicts)
        audit.record(actor, "booking.rooming", "booking", booking_id,
                     after={str(b): m for b, m in wanted.items()}, now=now)
        itineraries.refresh(concerned, now=now)
    return db.session.get_one(Booking, booking_id)


def member_double_bookings(delegation_id: int) -> list[dict]:
    """Every bed-night of the delegation's live bookings whose member has another bed that night."""
    live = and_(Booking.delegation_id == delegation_id, Booking.status.in_(LIVE_STATUSES),
                BedNight.state.in_(("booked", "held")), BedNight.member_id.is_not(None))
    doubled = (select(BedNight.member_id, BedNight.night).join(Booking, Booking.id == BedNight.booking_id)
               .where(live).group_by(BedNight.member_id, BedNight.night).having(func.count(BedNight.id) > 1)
               .subquery())
    rows = db.session.execute(
        select(BedNight.member_id, BedNight.night, BedNight.booking_id).distinct()
        .join(Booking, Booking.id == BedNight.booking_id)
        .join(doubled, and_(doubled.c.member_id == BedNight.member_id, doubled.c.night == BedNight.night))
        .where(live).order_by(BedNight.night, BedNight.member_id, BedNight.booking_id))
    return [{"member_id": m, "night": n.isoformat(), "booking_id": b} for m, n, b in rows]


def unassigned(delegation_id: int) -> list[dict]:
    """Per night of the delegation's live bookings, the beds nobody sleeps in and the members without a bed
    (API.md `GET /delegations/{id}/unassigned`): nights in order, only nights with something unassigned."""
    live = and_(Booking.delegation_id == delegation_id, Booking.status.in_(LIVE_STATUSES),
                BedNight.state.in_(("booked", "held")))
    rows = db.session.execute(
        select(BedNight.night, BedNight.booking_id, BedNight.bed_id, BedNight.member_id)
        .join(Booking, Booking.id == BedNight.booking_id).where(live)
        .order_by(BedNight.night, BedNight.booking_id, BedNight.bed_id)).all()
    members = db.session.execute(select(Member.id, Member.name).where(Member.delegation_id == delegation_id)
                                 .order_by(Member.id)).all()
    nights: dict[date, dict] = {}
    for night, booking_id, bed_id, member_id in rows:
        entry = nights.setdefault(night, {"beds": [], "placed": set()})
        if member_id is None:
            entry["beds"].append({"booking_id": booking_id, "bed_id": bed_id})
        else:
            entry["placed"].add(member_id)
    result = []
    for night, entry in nights.items():
        homeless = [{"id": member_id, "name": name} for member_id, name in members if member_id not in entry["placed"]]
        if entry["beds"] or homeless:
            result.append({"night": night.isoformat(), "beds": entry["beds"], "members": homeless})
    return result
