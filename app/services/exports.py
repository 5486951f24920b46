"""CSV exports: the same bytes whichever door (API token or HTML session) asks for them."""
from __future__ import annotations

import csv
import io

from flask_babel import pgettext
from sqlalchemy import select

from app.extensions import db
from app.labels import label
from app.models import Bed, BedNight, Booking, Contract, Delegation, Listing, Member, Room
from app.services import rooming

# API.md's column order: night, listing, room, bed, member name, booking id; words in the reader's language.
ROOMING_HEADER = ["Natt", "Boende", "Rum", "Säng", "Gäst", "Bokning"]
# The status column holds the code; status_text the same in the reader's words (app.labels).
GUESTS_HEADER = ["night", "listing", "room", "bed", "organisation", "guest", "contract", "booking_id", "status",
                 "status_text"]


def cell(value) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (OWASP CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv(header: list[str], rows) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def rooming_csv(delegation_id: int) -> bytes:
    """The delegation's rooming list: UTF-8 with BOM, semicolons, a header, one row per booked bed-night."""
    header = [pgettext("rooming csv", word) for word in ROOMING_HEADER]
    return _csv(header, ([row.night.isoformat(), row.listing, row.room, row.bed, row.member or "", row.booking_id]
                         for row in rooming.rooming_rows(delegation_id)))


def host_guests_csv(host_id: int) -> bytes:
    """The host's guest list: one row per booked (or held) bed-night on the host's beds, same format."""
    rows = db.session.execute(
        select(BedNight.night, Listing.title, Room.name, Bed.label, Delegation.name, Member.name, Contract.number,
               Booking.id, Booking.status)
        .join(Booking, Booking.id == BedNight.booking_id)
        .join(Delegation, Delegation.id == Booking.delegation_id)
        .join(Bed, Bed.id == BedNight.bed_id).join(Room, Room.id == Bed.room_id)
        .join(Listing, Listing.id == Room.listing_id)
        .outerjoin(Member, Member.id == BedNight.member_id)
        .outerjoin(Contract, Contract.booking_id == Booking.id)
        .where(Booking.host_id == host_id, BedNight.state.in_(("booked", "held")))
        .order_by(BedNight.night, Listing.title, Room.name, Bed.label)
    )
    return _csv(GUESTS_HEADER, ([night.isoformat(), *rest, label("booking_status", rest[-1], "host")]
                                for night, *rest in rows))
