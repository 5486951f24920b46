"""Rooming lists: who sleeps where, night by night."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Optional

from sqlalchemy import select

from app.extensions import db
from app.models import Bed, BedNight, Booking, Listing, Member, Room


@dataclass
class RoomingRow:
    night: date
    listing: str
    room: str
    bed: str
    bed_id: int
    member: Optional[str]
    member_id: Optional[int]
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
