"""Each member's itinerary: where they sleep during the week, on a private page and in an e-mail when it changes.

`itinerary(member)` is the one description of it that the page (`/itinerary/<token>`) and the mail both use: per
stay the listing, its address, room, bed, nights and host, plus the coordinator to ask. Only beds the member
really has count: bed-nights still booked or held, of bookings that are live (not cancelled or expired) and not
a waiting-list offer nobody has accepted. The host's phone (and legal name) appear once the booking is confirmed,
exactly as `host_contact` does for the coordinator (booking.party_contacts).

Whether to mail is decided by comparing, in the transaction that changes the beds, the itinerary as it now is
with the one the member was last sent (`members.itinerary_digest`, the SHA-256 of its facts): a rooming save that
changes nothing for a member sends them nothing, several changes in one transaction send one message, and a
member whose beds are all gone is told once. `refresh` does this for the members a change may concern; rooming
and member edits call it, and booking cancellations, expiries and confirmations reach it through their events.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, not_, select

from app.extensions import db
from app.models import Bed, BedNight, Booking, Delegation, Listing, Member, Room, User
from app.services import events
from app.services.base import Actor
from app.services.booking import CONTACT_STATUSES, party_contacts
from app.services.inventory import LIVE_STATUSES
from app.services.links import external_url
from app.services.offers import OFFER_KIND

TOKEN_BYTES = 32  # 43 URL-safe characters
MAX_TOKEN_LENGTH = 64
# Bed-nights a member sleeps in: booked (or held for an unpaid card booking) in a live booking that is not an
# unaccepted waiting-list offer. Released lines and the host_cancelled locks of a breached booking are not beds.
_SLEEPING = and_(
    BedNight.state.in_(("booked", "held")), Booking.status.in_(LIVE_STATUSES),
    not_(and_(Booking.kind == OFFER_KIND, Booking.status == "awaiting_payment")))


def new_token() -> str:
    """An unguessable secret for a member's itinerary link."""
    return secrets.token_urlsafe(TOKEN_BYTES)


@dataclass(frozen=True)
class Contact:
    name: str
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Stay:
    """One bed for consecutive nights of one booking."""

    booking_id: int
    confirmed: bool
    listing_title: str
    address: str
    postal_code: str
    walking_minutes: int
    room: str
    bed: str
    bed_kind: str
    check_in: date
    check_out: date
    host: Contact  # the phone only once the booking is confirmed

    @property
    def nights(self) -> int:
        return (self.check_out - self.check_in).days


@dataclass(frozen=True)
class Itinerary:
    member_id: int
    member_name: str
    email: str
    delegation: str
    coordinator: Contact
    stays: tuple[Stay, ...]
    url: str  # the private link
    locale: str  # the language of its mail: the coordinator's (members have no setting of their own)

    def digest(self) -> str | None:
        """The SHA-256 of what the member is told where they sleep (recipient and stays); None without a bed.

        The member's name, the coordinator's contact and the link are left out: a new spelling of a name is no
        reason to mail anyone (a new link comes with a new address, which counts)."""
        if not self.stays:
            return None
        facts = {"email": self.email, "stays": [asdict(stay) for stay in self.stays]}
        canonical = json.dumps(facts, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def member_by_token(token: str) -> Member | None:
    """The member whose itinerary link this is, or None (a wrong or malformed token)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return db.session.scalar(select(Member).where(Member.itinerary_token == token))


def itinerary_url(member: Member) -> str:
    """The member's private link, on BASE_URL (the same for as long as the member's e-mail address stays)."""
    return external_url("public.itinerary", token=member.itinerary_token)


def _host(booking: Booking) -> Contact:
    """What the member may know of the host: what their coordinator sees (host_contact once confirmed)."""
    contact = party_contacts(Actor(booking.coordinator_id, "coordinator"), booking).get("host_contact")
    if contact is not None:
        return Contact(contact["name"], phone=contact["phone"])
    return Contact(db.session.get_one(User, booking.host_id).name)  # the public name the listing page shows


def itinerary(member: Member) -> Itinerary:
    """Where the member sleeps, stay by stay in date order."""
    rows = db.session.execute(
        select(BedNight.night, BedNight.booking_id, BedNight.bed_id, Bed.label.label("bed"), Bed.kind,
               Room.name.label("room"), Listing.title, Listing.address, Listing.postal_code, Listing.walking_minutes)
        .join(Booking, Booking.id == BedNight.booking_id)
        .join(Bed, Bed.id == BedNight.bed_id)
        .join(Room, Room.id == Bed.room_id)
        .join(Listing, Listing.id == Room.listing_id)
        .where(BedNight.member_id == member.id, _SLEEPING)
        .order_by(BedNight.booking_id, BedNight.bed_id, BedNight.night)).all()
    runs: list[list] = []  # [first night, last night, row] per bed and run of consecutive nights
    for row in rows:
        last = runs[-1] if runs else None
        if last and (last[2].booking_id, last[2].bed_id) == (row.booking_id, row.bed_id) \
                and last[1] + timedelta(days=1) == row.night:
            last[1] = row.night
        else:
            runs.append([row.night, row.night, row])
    bookings = {b.id: b for b in db.session.scalars(select(Booking).where(
        Booking.id.in_({row.booking_id for row in rows})))}
    hosts = {booking_id: _host(booking) for booking_id, booking in bookings.items()}
    stays = [Stay(booking_id=row.booking_id, confirmed=bookings[row.booking_id].status in CONTACT_STATUSES,
                  listing_title=row.title, address=row.address, postal_code=row.postal_code,
                  walking_minutes=row.walking_minutes, room=row.room, bed=row.bed, bed_kind=row.kind,
                  check_in=first, check_out=last + timedelta(days=1), host=hosts[row.booking_id])
             for first, last, row in runs]
    stays.sort(key=lambda s: (s.check_in, s.listing_title, s.room, s.bed))
    delegation = db.session.get_one(Delegation, member.delegation_id)
    coordinator = db.session.get_one(User, delegation.coordinator_id)
    return Itinerary(member_id=member.id, member_name=member.name, email=member.email, delegation=delegation.name,
                     coordinator=Contact(coordinator.name, coordinator.email, coordinator.phone), stays=tuple(stays),
                     url=itinerary_url(member), locale=coordinator.locale or "sv")


def members_in_booking(booking_id: int) -> set[int]:
    """Every member with a bed-night in the booking, whatever its state (released lines remember the member)."""
    return set(db.session.scalars(select(BedNight.member_id).distinct().where(
        BedNight.booking_id == booking_id, BedNight.member_id.is_not(None))))


def refresh(member_ids: Iterable[int | None], *, now: datetime) -> list[Itinerary]:
    """Inside the caller's unit of work (flush only): for each member whose itinerary now differs from the one
    last sent, remember it and emit ITINERARY_CHANGED (the mail); the changed itineraries are returned.

    The members' rows are locked, in id order, before their itineraries are read, so two changes that concern the
    same member one after the other each compare against what the other sent, and the later one mails the
    itinerary with both changes (PostgreSQL READ COMMITTED reads the first's commit after the lock)."""
    ids = sorted({member_id for member_id in member_ids if member_id is not None})
    if not ids:
        return []
    db.session.flush()
    members = db.session.scalars(select(Member).where(Member.id.in_(ids)).order_by(Member.id)
                                 .with_for_update().execution_options(populate_existing=True)).all()
    changed = []
    for member in members:
        current = itinerary(member)
        digest = current.digest()
        if digest == member.itinerary_digest:
            continue
        first = member.itinerary_digest is None
        member.itinerary_digest = digest
        events.emit(events.ITINERARY_CHANGED, itinerary=current, first=first, now=now)
        changed.append(current)
    return changed


def _on_booking_changed(booking: Booking, now: datetime, **_ignored) -> None:
    """A booking was cancelled (by either party), expired or confirmed: its members' itineraries may differ."""
    refresh(members_in_booking(booking.id), now=now)


def _on_lines_cancelled(booking: Booking, now: datetime, member_ids: Iterable[int] = (),
                        **_ignored) -> None:
    """Some bed-nights were cancelled: the members still in the booking and those who lost their bed-nights (the
    cancellation cleared them from the lines, so the booking no longer remembers them)."""
    refresh(members_in_booking(booking.id) | set(member_ids), now=now)


def register() -> None:
    """Subscribe to the booking events that change where members sleep (idempotent)."""
    for name in (events.BOOKING_CONFIRMED, events.BOOKING_CANCELLED_BY_GUEST, events.BOOKING_CANCELLED_BY_HOST,
                 events.BOOKING_EXPIRED):
        events.subscribe(name, _on_booking_changed)
    events.subscribe(events.BOOKING_LINES_CANCELLED, _on_lines_cancelled)
