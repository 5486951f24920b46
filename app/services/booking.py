"""Bookings: create and quote (all or nothing, with the binding contract in the same transaction),
the parties' contacts, a host's public record.

The rest of a booking's life lives in its own modules, and callers import each name from the module that
defines it: `inventory` (bed-nights, holds, invoices), `cancellations`, `rooming`, `offers` (waiting-list
holds), `access` (who may see or act on a booking), `ledger` (the figures). None of them imports this module.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import BedNight, Booking, HostProfile, Listing, Season, User
from app.services import audit, events
from app.services.access import owned_delegation
from app.services.availability import check_not_past, check_stay, taken_bed_nights
from app.services.base import Actor, local_date, now_or, unit_of_work
from app.services.contracts import ContractDraft, form_contract, prepare_contract
from app.services.errors import Conflict, DomainError, Forbidden, ValidationFailed
from app.services.hoarding import enforce_organisation_limits
from app.services.inventory import (
    MAX_BEDS_PER_BOOKING,
    bed_removed_error,
    bookable_listing,
    conflict_error,
    contract_lines,
    issue_invoice,
    no_season_error,
    occupants,
    release_expired_holds,
    terms_in_force,
)
from app.services.listings import stay_nights
from app.services.seasons import season_for_stay

__all__ = [
    "PAYMENT_METHODS",
    "CONTACT_STATUSES",
    "party_contacts",
    "create_booking",
    "Quote",
    "quote_booking",
    "host_record",
    "fulfilled_and_cancelled",
]

PAYMENT_METHODS = ("invoice", "card")


CONTACT_STATUSES = ("confirmed", "completed")


def party_contacts(actor: Actor, booking: Booking) -> dict:
    """Each party sees the other's contact once the booking is confirmed (API.md): the coordinator gets
    `host_contact`, the host `coordinator_contact` (name, e-mail, phone where known); admins both."""
    if booking.status not in CONTACT_STATUSES:
        return {}
    result: dict = {}
    if actor.is_admin or booking.coordinator_id == actor.user_id:
        host = db.session.get_one(User, booking.host_id)
        profile = db.session.get(HostProfile, booking.host_id)
        result["host_contact"] = {"name": (profile.legal_name if profile and profile.legal_name else host.name),
                                  "email": host.email, "phone": profile.phone if profile else None}
    if actor.is_admin or booking.host_id == actor.user_id:
        coordinator = db.session.get_one(User, booking.coordinator_id)
        result["coordinator_contact"] = {"name": coordinator.name, "email": coordinator.email,
                                         "phone": coordinator.phone}
    return result


def _check_request(bed_ids, payment_method) -> list[int]:
    errors: dict[str, list[str]] = {}
    if (not isinstance(bed_ids, list) or not bed_ids
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in bed_ids)):
        errors["bed_ids"] = [_("Ange en lista med bädd-id:n.")]
    elif len(set(bed_ids)) != len(bed_ids):
        errors["bed_ids"] = [_("Varje bädd får bara finnas med en gång.")]
    elif len(bed_ids) > MAX_BEDS_PER_BOOKING:
        errors["bed_ids"] = [_("Högst %(max)s bäddar i en bokning.", max=MAX_BEDS_PER_BOOKING)]
    if payment_method not in PAYMENT_METHODS:
        errors["payment_method"] = [_("Välj 'invoice' (faktura) eller 'card' (kort).")]
    if errors:
        raise ValidationFailed(errors)
    return sorted(bed_ids)


def create_booking(actor: Actor, *, delegation_id: int, bed_ids, check_in: date, check_out: date,
                   accept_contract: bool, payment_method: str, now: datetime | None = None) -> Booking:
    """Book beds of one listing for a stay, all or nothing, and form the binding contract in the same transaction."""
    now = now_or(now)
    if actor.role != "coordinator":
        raise Forbidden(_("Bara delegationers samordnare bokar bäddar."))
    owned_delegation(actor, delegation_id)
    bed_ids = _check_request(bed_ids, payment_method)
    season = season_for_stay(check_in)
    if season is None:
        raise no_season_error(check_in.year)
    check_stay(season, check_in, check_out)
    check_not_past(check_in, now)
    if accept_contract is not True:
        raise DomainError(_("Du måste godkänna det bindande avtalet för att boka."), code="contract_not_accepted")
    part = prepare_part(actor, season, delegation_id, bed_ids, check_in, check_out, now)
    # Refuse what is visibly taken before asking for the write lock: in a rush most attempts lose,
    # and they should not queue behind the winners. The UNIQUE index still decides for the rest.
    taken, stale = occupants(bed_ids, check_in, check_out, now)
    if taken and not stale:
        raise conflict_error(taken)
    stay = Stay(delegation_id, season.id, season.year, check_in, check_out, stay_nights(check_in, check_out),
                payment_method, now + timedelta(minutes=season.hold_minutes) if payment_method == "card" else None)
    try:
        with unit_of_work():
            part = lock_terms(part, stay, now)
            taken = release_expired_holds(bed_ids, check_in, check_out, now)
            if taken:
                raise conflict_error(taken)
            enforce_organisation_limits(delegation_id, stay.season_id, bed_nights=len(bed_ids) * len(stay.nights),
                                        card_hold=stay.is_card, now=now)
            booking = insert_booking(actor, part, stay, now)
            seal_booking(actor, booking, part, stay, now)
    except IntegrityError:
        raise taken_or_removed(bed_ids, check_in, check_out) from None
    return booking


# The steps of forming a booking, shared by create_booking and orders (several bookings in one unit of work).


@dataclass(frozen=True)
class Stay:
    """What every booking formed in one request shares (plain values, safe across the unit of work's start)."""

    delegation_id: int
    season_id: int
    year: int
    check_in: date
    check_out: date
    nights: list[date]
    payment_method: str
    expires_at: datetime | None
    # Formed by the allocation draw, before bookings open (the opening time does not apply; all else does).
    by_draw: bool = False

    @property
    def is_card(self) -> bool:
        return self.payment_method == "card"


@dataclass(frozen=True)
class Part:
    """One listing's beds for a stay, read before the write lock: its prices and the contract to form."""

    bed_ids: list[int]
    listing_id: int
    host_id: int
    prices: dict[int, int]
    draft: ContractDraft

    @property
    def total_ore(self) -> int:
        return sum(self.prices.values())


def prepare_part(actor: Actor, season: Season, delegation_id: int, bed_ids: list[int], check_in: date,
                 check_out: date, now: datetime, *, accepted_at: datetime | None = None,
                 by_draw: bool = False) -> Part:
    """Check the beds bookable (one listing) and read what its contract needs, before the write lock.

    `accepted_at`: when the coordinator accepted the contract, if before `now` (an allocation request accepts it
    in advance, and the draw forms it); `by_draw`: formed by the allocation draw, before bookings open."""
    listing, prices = bookable_listing(bed_ids, season, now, by_draw=by_draw)
    assert actor.user_id is not None  # a coordinator acts (checked by the callers)  # nosec B101
    # Everything that can be read is read before the write lock (plain values: the unit of work's
    # start expires loaded objects), so that the lock is held for the inserts alone.
    draft = prepare_contract(season, listing, delegation_id=delegation_id, coordinator_id=actor.user_id,
                             lines=contract_lines(bed_ids, stay_nights(check_in, check_out), prices),
                             accepted_at=accepted_at or now, ip=actor.ip,
                             formed_at=now if accepted_at is not None else None)
    return Part(bed_ids, listing.id, listing.host_id, prices, draft)


def lock_terms(part: Part, stay: Stay, now: datetime) -> Part:
    """Inside the unit of work: the part at the prices and property in force now, locked until commit."""
    # The price a booking copies is the price in force when it commits (API.md): read again under lock.
    prices, place = terms_in_force(stay.season_id, stay.year, part.listing_id, part.bed_ids, now, by_draw=stay.by_draw)
    draft = part.draft
    if prices == part.prices and all(draft.parts["property"][k] == v for k, v in place.items()):
        return part
    draft = replace(draft, parts={
        **draft.parts, "property": {**draft.parts["property"], **place},
        "lines": [{**line, "price_ore": prices[line["bed_id"]]} for line in draft.parts["lines"]]})
    return replace(part, prices=prices, draft=draft)


def insert_booking(actor: Actor, part: Part, stay: Stay, now: datetime, *, order_id: int | None = None
                   ) -> Booking:
    """Insert the booking and its bed-nights (flush: the UNIQUE index on occupied bed-nights decides here)."""
    is_card = stay.is_card
    booking = Booking(
        delegation_id=stay.delegation_id, season_id=stay.season_id, listing_id=part.listing_id,
        host_id=part.host_id, coordinator_id=actor.user_id, status="awaiting_payment" if is_card else "confirmed",
        payment_method=stay.payment_method, total_ore=part.total_ore * len(stay.nights), refund_ore=0,
        check_in=stay.check_in, check_out=stay.check_out, created_at=now, expires_at=stay.expires_at,
        confirmed_at=None if is_card else now, order_id=order_id,
    )
    db.session.add(booking)
    db.session.flush()
    # One executemany, not one INSERT per bed-night (the ORM sends them one by one on SQLite to learn their ids,
    # which nothing here needs): a delegation's booking has dozens.
    db.session.execute(insert(BedNight), [
        {"bed_id": bed_id, "night": night, "state": "held" if is_card else "booked", "booking_id": booking.id,
         "price_ore": part.prices[bed_id], "created_at": now}
        for night in stay.nights for bed_id in part.bed_ids
    ])
    return booking


def seal_booking(actor: Actor, booking: Booking, part: Part, stay: Stay, now: datetime) -> None:
    """After the bed-nights are in: the invoice number, the contract, the audit entry and the event (flush only)."""
    if not stay.is_card:
        issue_invoice(booking, stay.year, now)
    form_contract(booking, part.draft)
    audit.record(actor, "booking.created", "booking", booking.id,
                 after={"bed_ids": part.bed_ids, "check_in": stay.check_in, "check_out": stay.check_out,
                        "total_ore": booking.total_ore, "status": booking.status}, now=now)
    events.emit(events.BOOKING_CREATED, booking=booking, now=now)


def taken_or_removed(bed_ids: list[int], check_in: date, check_out: date) -> Conflict:
    """After the UNIQUE index refused an insert: another transaction took some of these bed-nights between our
    check and our insert, or (nothing taken) the host deleted one of the beds, which had no history yet."""
    taken = taken_bed_nights(bed_ids, check_in, check_out)
    return conflict_error(taken) if taken else bed_removed_error(bed_ids)


@dataclass(frozen=True)
class Quote:
    """What a booking of these beds for this stay would be now: the same checks and prices as create_booking."""

    season: Season
    listing: Listing
    lines: list[dict]
    total_ore: int


def quote_booking(bed_ids: list[int], check_in: date, check_out: date, *, now: datetime | None = None) -> Quote:
    """Price a prospective booking (for the contract preview) under the booking rules, without booking."""
    now = now_or(now)
    bed_ids = sorted(set(bed_ids))
    season = season_for_stay(check_in)
    if season is None:
        raise no_season_error(check_in.year)
    check_stay(season, check_in, check_out)
    listing, prices = bookable_listing(bed_ids, season, now)
    nights = stay_nights(check_in, check_out)
    lines = contract_lines(bed_ids, nights, prices)
    return Quote(season, listing, lines, sum(prices.values()) * len(nights))


def host_record(host_id: int, *, now: datetime | None = None) -> dict:
    """What the public sees of a host: name, vetted since, contracts fulfilled, host cancellations."""
    profile = db.session.get(HostProfile, host_id)
    user = db.session.get_one(User, host_id)
    fulfilled, cancelled = fulfilled_and_cancelled(host_id, local_date(now_or(now)))
    return {"id": host_id, "display_name": user.name,
            "verified_since": profile.verified_since.isoformat() if profile and profile.verified_since else None,
            "contracts_fulfilled": fulfilled, "host_cancellations": cancelled}


def fulfilled_and_cancelled(host_id: int, today: date) -> tuple[int, int]:
    """The host's record: contracts fulfilled (stays ended) and host cancellations."""
    fulfilled = db.session.scalar(select(func.count(Booking.id)).where(
        Booking.host_id == host_id, Booking.status.in_(("confirmed", "completed")), Booking.check_out <= today))
    cancelled = db.session.scalar(select(func.count(Booking.id)).where(
        Booking.host_id == host_id, Booking.status == "cancelled_by_host"))
    return fulfilled or 0, cancelled or 0


# ---------------------------------------------------------------------------------------------
# Waiting-list offers: beds held for a delegation, turned into a booking when the offer is accepted
# ---------------------------------------------------------------------------------------------
