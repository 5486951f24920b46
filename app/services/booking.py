"""Bookings: all-or-nothing bed-night inventory, contracts, cancellations, rooming and holds."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Optional

from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.i18n import booking_status
from app.i18n import local_date as local_date_text
from app.i18n import local_dt
from app.models import (
    OCCUPYING_STATES, Bed, BedNight, BedPrice, Booking, Delegation, Flag, HostProfile, Listing, Room,
    Season, User,
)
from app.services import audit, events
from app.services import payments
from app.services.access import locked_booking, own_booking, owned_delegation, visible_booking
from app.services.availability import check_not_past, check_stay, taken_bed_nights
from app.services.base import Actor, local_date, now_or, unit_of_work
from app.services.contracts import form_contract, next_number, prepare_contract
from app.services.errors import Conflict, DomainError, Forbidden, ValidationFailed
from app.services.hoarding import enforce_organisation_limits
from app.services.ledger import add_refund, guest_cancellation_ore, host_cancellation_ore, latest_captured_payment
from app.services.listings import owned_bed, stay_nights
from app.services.seasons import season_for_stay
from app.services.text import clean_text
from app.services.vetting import add_strike

PAYMENT_METHODS = ("invoice", "card")
MAX_BEDS_PER_BOOKING = 100
INVOICE_DAYS = 30
CANCELLABLE = ("awaiting_payment", "confirmed")
LIVE_STATUSES = ("awaiting_payment", "confirmed", "completed")  # bookings whose beds a member sleeps in


def conflict_error(pairs: list[tuple[int, date]]) -> Conflict:
    listed = ", ".join(_("bädd %(bed)s natten %(night)s", bed=bed_id, night=local_date_text(night, "d MMM y"))
                       for bed_id, night in pairs[:20])
    if len(pairs) > 20:
        listed = _("%(listed)s och %(more)s till", listed=listed, more=len(pairs) - 20)
    return Conflict(
        _("De här bäddnätterna är redan tagna: %(listed)s. Ingenting bokades; välj andra bäddar eller nätter.",
          listed=listed),
        code="bed_nights_taken",
        conflicts=[{"bed_id": bed_id, "night": night.isoformat()} for bed_id, night in pairs],
    )


def no_season_error(year: int) -> DomainError:
    return DomainError(_("Det finns ingen säsong för %(year)s.", year=year), code="outside_season")


CONTACT_STATUSES = ("confirmed", "completed")


def party_contacts(actor: Actor, booking: Booking) -> dict:
    """Each party sees the other's contact once the booking is confirmed (API.md): the coordinator gets
    `host_contact`, the host `coordinator_contact` (name, e-mail, phone where known); admins both."""
    if booking.status not in CONTACT_STATUSES:
        return {}
    result: dict = {}
    if actor.is_admin or booking.coordinator_id == actor.user_id:
        host = db.session.get(User, booking.host_id)
        profile = db.session.get(HostProfile, booking.host_id)
        result["host_contact"] = {"name": (profile.legal_name if profile and profile.legal_name else host.name),
                                  "email": host.email, "phone": profile.phone if profile else None}
    if actor.is_admin or booking.host_id == actor.user_id:
        coordinator = db.session.get(User, booking.coordinator_id)
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


# The two statements every booking attempt runs, built once: in a rush most attempts are refusals,
# and building and cache-keying a statement costs about as much as running it on SQLite.
_BEDS_FOR_BOOKING = (
    select(Bed.id, Listing, HostProfile.vetting_status, BedPrice.price_ore)
    .join(Room, Room.id == Bed.room_id).join(Listing, Listing.id == Room.listing_id)
    .outerjoin(HostProfile, HostProfile.user_id == Listing.host_id)
    .outerjoin(BedPrice, and_(BedPrice.bed_id == Bed.id, BedPrice.season_id == bindparam("season_id")))
    .where(Bed.id.in_(bindparam("bed_ids", expanding=True)), Bed.removed_at.is_(None))
)
_OCCUPANTS = (
    select(BedNight.bed_id, BedNight.night, BedNight.state, Booking.id, Booking.status, Booking.expires_at)
    .outerjoin(Booking, Booking.id == BedNight.booking_id)
    .where(BedNight.bed_id.in_(bindparam("bed_ids", expanding=True)), BedNight.night >= bindparam("check_in"),
           BedNight.night < bindparam("check_out"), BedNight.state.in_(OCCUPYING_STATES))
    .order_by(BedNight.night, BedNight.bed_id)
)


def _not_bookable_reason(published, vetting_status, accepted_terms_version, season, now, all_priced
                         ) -> Optional[str]:
    """Why a listing cannot be booked now, or None (the same words before and under the lock)."""
    if not published:
        return _("Boendet är inte publicerat.")
    if vetting_status != "approved":
        return _("Värden kan inte ta emot bokningar just nu.")
    if accepted_terms_version != season.terms_version:
        return _("Värden har ännu inte godkänt villkoren för %(year)s.", year=season.year)
    if not season.is_open(now):
        return _("Bokningen för %(year)s öppnar %(opens)s.", year=season.year,
                 opens=local_dt(season.bookings_open_at, "d MMM y HH:mm"))
    if not all_priced:
        return _("Några av bäddarna saknar pris den här säsongen.")
    return None


def _not_bookable(reason: str) -> DomainError:
    return DomainError(_("%(reason)s Ingenting bokades.", reason=reason), code="not_bookable")


def _bookable_listing(bed_ids: list[int], season, now: datetime) -> tuple[Listing, dict[int, int]]:
    """The single listing these beds belong to, checked bookable, and each bed's price (one query)."""
    rows = db.session.execute(_BEDS_FOR_BOOKING, {"season_id": season.id, "bed_ids": bed_ids}).all()
    unknown = sorted(set(bed_ids) - {row[0] for row in rows})
    if unknown:
        raise ValidationFailed({"bed_ids": [_("Okända bädd-id:n: %(ids)s.", ids=", ".join(map(str, unknown)))]})
    if len({row[1].id for row in rows}) > 1:
        raise DomainError(_("Alla bäddar i en bokning måste höra till samma boende (en värd, ett avtal). "
                            "Gör en bokning per boende."), code="beds_span_listings")
    listing, status = rows[0][1], rows[0][2]
    # Never above the cap in force (a lowered cap has lowered the prices above it; this is the guard).
    prices = {bed_id: min(price, season.price_cap_ore) for bed_id, _, _, price in rows if price is not None}
    reason = _not_bookable_reason(listing.published, status, listing.accepted_terms_version, season, now,
                                  len(prices) == len(bed_ids))
    if reason:
        raise _not_bookable(reason)
    return listing, prices


# Read under the booking's write lock (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers):
# the season's row and the listing's FOR SHARE, then the beds' prices FOR SHARE. A cap change
# (`seasons.update_season`) locks the season FOR UPDATE, a price change (`pricing.set_price`) the price
# FOR UPDATE, an address change (`listings.update_listing`) and unpublishing the listing FOR UPDATE: each
# is wholly before this booking (it sees the new values) or waits until the booking has committed. Every
# writer takes these rows in the same order (season, listing, bed, price), so none deadlocks.
_LOCKED_SEASON_AND_LISTING = (
    select(Season.price_cap_ore, Season.terms_version, Season.bookings_open_at, Listing.published,
           Listing.accepted_terms_version, Listing.title, Listing.address, Listing.postal_code,
           Listing.walking_minutes, HostProfile.vetting_status)
    .select_from(Season).join(Listing, Listing.id == bindparam("listing_id"))
    .outerjoin(HostProfile, HostProfile.user_id == Listing.host_id)
    .where(Season.id == bindparam("season_id"))
    .with_for_update(read=True, of=[Season, Listing])
)
_LOCKED_PRICES = (
    select(BedPrice.bed_id, BedPrice.price_ore)
    .where(BedPrice.season_id == bindparam("season_id"), BedPrice.bed_id.in_(bindparam("bed_ids", expanding=True)))
    .order_by(BedPrice.bed_id)
    .with_for_update(read=True)
)


def _terms_in_force(season_id: int, year: int, listing_id: int, bed_ids: list[int], now: datetime
                    ) -> tuple[dict[int, int], dict]:
    """Inside the booking's unit of work: re-check the listing is bookable and read each bed's price and the
    property as they are in force now, locked until commit (two queries; plain values in, so that no expired
    object is reloaded). Returns (prices, property)."""
    row = db.session.execute(_LOCKED_SEASON_AND_LISTING, {"season_id": season_id, "listing_id": listing_id}).one()
    (cap, terms_version, open_at, published, accepted_terms, title, address, postal_code, walking_minutes,
     status) = row
    prices = {bed_id: min(price, cap) for bed_id, price in db.session.execute(
        _LOCKED_PRICES, {"season_id": season_id, "bed_ids": bed_ids})}
    locked_season = _SeasonTerms(year, terms_version, open_at)
    reason = _not_bookable_reason(published, status, accepted_terms, locked_season, now, len(prices) == len(bed_ids))
    if reason:
        raise _not_bookable(reason)
    place = {"title": title, "address": address, "postal_code": postal_code, "walking_minutes": walking_minutes}
    return prices, place


@dataclass(frozen=True)
class _SeasonTerms:
    """The season's fields the bookable check reads, as read under the lock."""

    year: int
    terms_version: str
    bookings_open_at: datetime

    def is_open(self, now: datetime) -> bool:
        return now >= self.bookings_open_at


def _occupants(bed_ids: list[int], check_in: date, check_out: date, now: datetime) -> tuple[list, list[int]]:
    """The occupied (bed, night) pairs of the stay, and the unpaid holds among them that are past their time."""
    rows = db.session.execute(_OCCUPANTS, {"bed_ids": bed_ids, "check_in": check_in, "check_out": check_out}).all()
    stale = sorted({booking_id for _, _, state, booking_id, status, expires_at in rows
                    if state == "held" and status == "awaiting_payment" and expires_at is not None
                    and expires_at <= now})
    return [(bed_id, night) for bed_id, night, *_ in rows], stale


def expire_booking(booking: Booking, now: datetime, actor: Actor) -> None:
    """Turn an unpaid hold into `expired` and free its bed-nights (flush only)."""
    booking.status = "expired"
    booking.cancelled_at = now
    db.session.execute(
        update(BedNight).where(BedNight.booking_id == booking.id, BedNight.state == "held")
        .values(state="released", released_at=now)
    )
    audit.record(actor, "booking.expired", "booking", booking.id, after={"expires_at": booking.expires_at}, now=now)
    events.emit(events.BOOKING_EXPIRED, booking=booking, now=now)


def _release_expired_holds(bed_ids: list[int], check_in: date, check_out: date, now: datetime
                           ) -> list[tuple[int, date]]:
    """Expire holds past their time on the bed-nights this request needs; return what stays occupied."""
    taken, stale = _occupants(bed_ids, check_in, check_out, now)
    if not stale:
        return taken
    # Locked, so that a payment confirming one of these holds at this moment is not overwritten.
    for booking in db.session.scalars(select(Booking).where(
            Booking.id.in_(stale), Booking.status == "awaiting_payment", Booking.expires_at <= now)
            .with_for_update().execution_options(populate_existing=True)):
        expire_booking(booking, now, Actor.system())
    db.session.flush()
    return _occupants(bed_ids, check_in, check_out, now)[0]


def create_booking(actor: Actor, *, delegation_id: int, bed_ids, check_in: date, check_out: date,
                   accept_contract: bool, payment_method: str, now: Optional[datetime] = None) -> Booking:
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
    listing, prices = _bookable_listing(bed_ids, season, now)
    # Refuse what is visibly taken before asking for the write lock: in a rush most attempts lose,
    # and they should not queue behind the winners. The UNIQUE index still decides for the rest.
    taken, stale = _occupants(bed_ids, check_in, check_out, now)
    if taken and not stale:
        raise conflict_error(taken)
    nights = stay_nights(check_in, check_out)
    is_card = payment_method == "card"
    # Everything that can be read is read before the write lock (plain values: the unit of work's
    # start expires loaded objects), so that the lock is held for the inserts alone.
    draft = prepare_contract(season, listing, delegation_id=delegation_id, coordinator_id=actor.user_id,
                             lines=_contract_lines(bed_ids, nights, prices), accepted_at=now, ip=actor.ip)
    season_id, year, listing_id, host_id = season.id, season.year, listing.id, listing.host_id
    expires_at = now + timedelta(minutes=season.hold_minutes) if is_card else None
    try:
        with unit_of_work():
            # The price a booking copies is the price in force when it commits (API.md): read again under lock.
            locked_prices, place = _terms_in_force(season_id, year, listing_id, bed_ids, now)
            if locked_prices != prices or any(draft.parts["property"][k] != v for k, v in place.items()):
                prices = locked_prices
                draft = replace(draft, parts={
                    **draft.parts, "property": {**draft.parts["property"], **place},
                    "lines": [{**line, "price_ore": prices[line["bed_id"]]} for line in draft.parts["lines"]]})
            taken = _release_expired_holds(bed_ids, check_in, check_out, now)
            if taken:
                raise conflict_error(taken)
            enforce_organisation_limits(delegation_id, season_id, bed_nights=len(bed_ids) * len(nights),
                                        card_hold=is_card, now=now)
            booking = Booking(
                delegation_id=delegation_id, season_id=season_id, listing_id=listing_id, host_id=host_id,
                coordinator_id=actor.user_id, status="awaiting_payment" if is_card else "confirmed",
                payment_method=payment_method, total_ore=sum(prices.values()) * len(nights), refund_ore=0,
                check_in=check_in, check_out=check_out, created_at=now, expires_at=expires_at,
                confirmed_at=None if is_card else now,
            )
            db.session.add(booking)
            db.session.flush()
            db.session.add_all([
                BedNight(bed_id=bed_id, night=night, state="held" if is_card else "booked", booking_id=booking.id,
                         price_ore=prices[bed_id], created_at=now)
                for night in nights for bed_id in bed_ids
            ])
            db.session.flush()  # the UNIQUE index on occupied bed-nights decides here
            check_beds_still_offered(bed_ids)
            if not is_card:
                _issue_invoice(booking, year, now)
            form_contract(booking, draft)
            audit.record(actor, "booking.created", "booking", booking.id,
                         after={"bed_ids": bed_ids, "check_in": check_in, "check_out": check_out,
                                "total_ore": booking.total_ore, "status": booking.status}, now=now)
            events.emit(events.BOOKING_CREATED, booking=booking, now=now)
    except IntegrityError:
        # Another transaction took some of these bed-nights between our check and our insert, or (nothing
        # taken) the host deleted one of the beds, which had no history yet.
        taken = taken_bed_nights(bed_ids, check_in, check_out)
        if not taken:
            raise Conflict(_("Värden har tagit bort en av bäddarna medan du bokade. Ingenting bokades; sök igen."),
                           code="state_changed", bed_ids=bed_ids) from None
        raise conflict_error(taken) from None
    return booking


def check_beds_still_offered(bed_ids: list[int]) -> None:
    """After inserting bed-nights (flush only): 409 state_changed if the host removed one of these beds since
    they were read. The inserts hold a key-share lock on each bed, so a removal not yet committed waits for
    this transaction and then sees its bed-nights; one committed before is seen here."""
    removed = sorted(db.session.scalars(select(Bed.id).where(Bed.id.in_(bed_ids), Bed.removed_at.is_not(None))))
    if removed:
        raise Conflict(_("Värden har tagit bort en av bäddarna medan du bokade. Ingenting bokades; sök igen."),
                       code="state_changed", bed_ids=removed)


def _issue_invoice(booking: Booking, year: int, now: datetime) -> None:
    """Give an invoice booking its consecutive number and due date (flush only)."""
    seq = next_number("invoice", year)
    booking.invoice_number = f"F-{year}-{seq:06d}"
    booking.invoice_due_on = max(local_date(now), min(local_date(now) + timedelta(days=INVOICE_DAYS),
                                                      booking.check_in - timedelta(days=1)))


def _contract_lines(bed_ids, nights, prices) -> list[dict]:
    labels = dict(db.session.execute(
        select(Bed.id, Room.name + " / " + Bed.label).join(Room, Room.id == Bed.room_id).where(Bed.id.in_(bed_ids))
    ).all())
    return [{"bed_id": bed_id, "bed": labels[bed_id], "night": night.isoformat(), "price_ore": prices[bed_id]}
            for night in nights for bed_id in bed_ids]


@dataclass(frozen=True)
class Quote:
    """What a booking of these beds for this stay would be now: the same checks and prices as create_booking."""

    season: Season
    listing: Listing
    lines: list[dict]
    total_ore: int


def quote_booking(bed_ids: list[int], check_in: date, check_out: date, *, now: Optional[datetime] = None) -> Quote:
    """Price a prospective booking (for the contract preview) under the booking rules, without booking."""
    now = now_or(now)
    bed_ids = sorted(set(bed_ids))
    season = season_for_stay(check_in)
    if season is None:
        raise no_season_error(check_in.year)
    check_stay(season, check_in, check_out)
    listing, prices = _bookable_listing(bed_ids, season, now)
    nights = stay_nights(check_in, check_out)
    lines = _contract_lines(bed_ids, nights, prices)
    return Quote(season, listing, lines, sum(prices.values()) * len(nights))


def _queue_refund(booking: Booking, amount_ore: int, reason: str, now: datetime) -> None:
    """Record a card refund to be sent to Stripe after commit (the refunds table is its outbox)."""
    if booking.payment_method != "card" or amount_ore <= 0:
        return
    payment = latest_captured_payment(booking.id)
    add_refund(booking.id, payment.id if payment else None, amount_ore, reason, now)


def cancel_by_guest(actor: Actor, booking_id: int, *, now: Optional[datetime] = None) -> Booking:
    """The coordinator cancels under the contract's terms; the bed-nights are freed."""
    now = now_or(now)
    booking = visible_booking(actor, booking_id)
    if booking.coordinator_id != actor.user_id:
        raise Forbidden(_("Bara bokningens samordnare kan avboka den på det här sättet."))
    with unit_of_work():
        booking = locked_booking(booking_id)
        if booking.status not in CANCELLABLE:
            raise Conflict(_("Bokningen är %(status)s och kan inte avbokas.", status=booking_status(booking.status)),
                           code="not_cancellable", status_now=booking.status)
        refund, credit = guest_cancellation_ore(booking, local_date(now))
        _queue_refund(booking, refund, "guest_cancellation", now)
        before = booking.status
        booking.status = "cancelled_by_guest"
        booking.cancelled_at = now
        booking.refund_ore = refund
        booking.invoice_credited_ore = credit
        db.session.execute(update(BedNight).where(
            BedNight.booking_id == booking.id, BedNight.state.in_(("held", "booked")))
            .values(state="released", released_at=now))
        audit.record(actor, "booking.cancelled_by_guest", "booking", booking.id, before={"status": before},
                     after={"status": booking.status, "refund_ore": refund, "invoice_credited_ore": credit},
                     now=now)
        events.emit(events.BOOKING_CANCELLED_BY_GUEST, booking=booking, now=now)
    payments.after_cancellation(booking_id)
    return booking


def cancel_by_host(actor: Actor, booking_id: int, reason: str, *, now: Optional[datetime] = None) -> Booking:
    """A host breaks the contract: the money received is refunded in full and an unpaid invoice credited in full
    (host_cancellation_ore), the beds stay locked for the stay, a strike and a flag."""
    now = now_or(now)
    booking = visible_booking(actor, booking_id)
    if booking.host_id != actor.user_id:
        raise Forbidden(_("Bara bokningens värd kan avboka den som värd."))
    reason = (reason or "").strip()
    if len(reason) > 1000:
        raise ValidationFailed({"reason": [_("Högst %(max)s tecken.", max=1000)]})
    clean_text(reason, "reason", multiline=True)
    with unit_of_work():
        booking = locked_booking(booking_id)
        if booking.status not in CANCELLABLE:
            raise Conflict(_("Bokningen är %(status)s och kan inte avbokas.", status=booking_status(booking.status)),
                           code="not_cancellable", status_now=booking.status)
        if is_offer(booking) and booking.status == "awaiting_payment":
            raise Conflict(_("Ett erbjudande från väntelistan som ingen har tagit emot kan inte avbokas."),
                           code="not_cancellable", status_now=booking.status)
        refund, credit = host_cancellation_ore(booking)
        _queue_refund(booking, refund, "host_cancellation", now)
        before = booking.status
        booking.status = "cancelled_by_host"
        booking.cancelled_at = now
        booking.cancel_reason = reason
        booking.refund_ore = refund
        booking.invoice_credited_ore = credit
        db.session.execute(update(BedNight).where(
            BedNight.booking_id == booking.id, BedNight.state.in_(("held", "booked")))
            .values(state="host_cancelled"))
        audit.record(actor, "booking.cancelled_by_host", "booking", booking.id, before={"status": before},
                     after={"status": booking.status, "refund_ore": refund, "invoice_credited_ore": credit,
                            "reason": reason}, now=now)
        add_strike(actor, booking.host_id, f"host cancelled booking {booking.id}", now=now)
        db.session.add(Flag(host_id=booking.host_id, reporter_id=None, source="system", booking_id=booking.id,
                            category="cancellation", description=f"The host cancelled booking {booking.id}: {reason}",
                            status="open", strike_given=True, created_at=now))
        events.emit(events.BOOKING_CANCELLED_BY_HOST, booking=booking, now=now)
    payments.after_cancellation(booking_id)
    return booking


def block_nights(actor: Actor, bed_id: int, check_in: date, check_out: date, *,
                 now: Optional[datetime] = None) -> list[BedNight]:
    """A host takes their own free bed off the market for some nights."""
    now = now_or(now)
    if actor.role != "host":
        raise Forbidden(_("Bara värdar spärrar sina bäddar."))
    owned_bed(actor, bed_id)
    season = season_for_stay(check_in)
    if season is None:
        raise no_season_error(check_in.year)
    check_stay(season, check_in, check_out)
    check_not_past(check_in, now)
    nights = stay_nights(check_in, check_out)
    try:
        with unit_of_work():
            taken = _release_expired_holds([bed_id], check_in, check_out, now)
            if taken:
                raise conflict_error(taken)
            rows = [BedNight(bed_id=bed_id, night=night, state="host_block", created_at=now) for night in nights]
            db.session.add_all(rows)
            db.session.flush()
            audit.record(actor, "bed.blocked", "bed", bed_id, after={"check_in": check_in, "check_out": check_out},
                         now=now)
    except IntegrityError:
        raise conflict_error(taken_bed_nights([bed_id], check_in, check_out)) from None
    return rows


def unblock_nights(actor: Actor, bed_id: int, check_in: date, check_out: date, *,
                   now: Optional[datetime] = None) -> int:
    """Free a host's own blocked nights again (never a booked or breached night)."""
    now = now_or(now)
    owned_bed(actor, bed_id)
    with unit_of_work():
        result = db.session.execute(update(BedNight).where(
            BedNight.bed_id == bed_id, BedNight.night >= check_in, BedNight.night < check_out,
            BedNight.state == "host_block").values(state="released", released_at=now))
        audit.record(actor, "bed.unblocked", "bed", bed_id, after={"check_in": check_in, "check_out": check_out},
                     now=now)
    return result.rowcount


def assign_rooming(actor: Actor, booking_id: int, assignments: list[dict], *,
                   now: Optional[datetime] = None) -> Booking:
    """Put the delegation's members in the booked beds (member_id null empties a bed)."""
    now = now_or(now)
    booking = own_booking(actor, booking_id)
    if booking.status not in CANCELLABLE:
        raise Conflict(_("Bara en aktiv bokning har en rumsfördelning."), code="not_active")
    bed_ids = {line.bed_id for line in booking.lines}
    member_ids = {m.id for m in booking.delegation.members}
    errors: dict[str, list[str]] = {}
    wanted: dict[int, Optional[int]] = {}
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
        for bed_id, member_id in wanted.items():
            db.session.execute(update(BedNight).where(
                BedNight.booking_id == booking_id, BedNight.bed_id == bed_id).values(member_id=member_id))
        conflicts = member_double_bookings(booking.delegation_id)
        if conflicts:
            raise Conflict(_("En deltagare kan bara sova i en bädd per natt, i den här eller en annan av "
                             "delegationens bokningar."), code="member_double_booked", conflicts=conflicts)
        audit.record(actor, "booking.rooming", "booking", booking_id,
                     after={str(b): m for b, m in wanted.items()}, now=now)
    return db.session.get(Booking, booking_id)


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


def host_record(host_id: int, *, now: Optional[datetime] = None) -> dict:
    """What the public sees of a host: name, vetted since, contracts fulfilled, host cancellations."""
    profile = db.session.get(HostProfile, host_id)
    user = db.session.get(User, host_id)
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

OFFER_NOTE = "waitlist offer"


def is_offer(booking: Booking) -> bool:
    return booking.note == OFFER_NOTE


def hold_beds_for_offer(delegation: Delegation, listing_id: int, season, prices: dict[int, int], check_in: date,
                        check_out: date, *, expires_at: datetime, now: datetime) -> Booking:
    """Hold these beds for a waiting-list offer inside the caller's unit of work (flush only).

    The hold is an `awaiting_payment` invoice booking without a contract: no one has accepted
    anything yet. `expire_holds` ends it at `expires_at` like any unpaid hold; accepting it
    (`confirm_offered_hold`) forms the contract. Raises IntegrityError when a bed-night was taken, and
    DomainError `organisation_limit` when the offer would take the organisation above its bed-night limit.
    """
    listing = db.session.get(Listing, listing_id)
    bed_ids = sorted(prices)
    nights = stay_nights(check_in, check_out)
    # An unaccepted offer holds bed-nights for the organisation like a booking: the same limit applies.
    enforce_organisation_limits(delegation.id, season.id, bed_nights=len(bed_ids) * len(nights), card_hold=False,
                                now=now)
    booking = Booking(
        delegation_id=delegation.id, season_id=season.id, listing_id=listing.id, host_id=listing.host_id,
        coordinator_id=delegation.coordinator_id, status="awaiting_payment", payment_method="invoice",
        total_ore=sum(prices.values()) * len(nights), refund_ore=0, check_in=check_in, check_out=check_out,
        created_at=now, expires_at=expires_at, note=OFFER_NOTE,
    )
    db.session.add(booking)
    db.session.flush()
    db.session.add_all([
        BedNight(bed_id=bed_id, night=night, state="held", booking_id=booking.id, price_ore=prices[bed_id],
                 created_at=now)
        for night in nights for bed_id in bed_ids
    ])
    db.session.flush()  # the UNIQUE index on occupied bed-nights decides here
    check_beds_still_offered(bed_ids)
    audit.record(Actor.system(), "booking.offer_held", "booking", booking.id,
                 after={"bed_ids": bed_ids, "check_in": check_in, "check_out": check_out,
                        "total_ore": booking.total_ore, "expires_at": expires_at}, now=now)
    return booking


def confirm_offered_hold(actor: Actor, booking: Booking, *, now: datetime) -> Booking:
    """The coordinator accepts a held offer, inside the caller's unit of work (flush only), on the booking
    row the caller has locked (`locked`) and re-checked here.

    The beds are booked on invoice at today's prices (which can only have gone down since the
    offer), the invoice is numbered and the binding contract is formed, as in `create_booking`.
    """
    if booking.status != "awaiting_payment" or not is_offer(booking):
        # The offer lapsed or was withdrawn by a change the caller did not see (the caller holds the lock).
        raise Conflict(_("Erbjudandet har gått ut eller dragits tillbaka; bäddarna är åter lediga för alla."),
                       code="state_changed", status_now=booking.status)
    if booking.expires_at is not None and booking.expires_at <= now:
        raise Conflict(_("Erbjudandet har gått ut eller dragits tillbaka; bäddarna är åter lediga för alla."),
                       code="offer_expired")
    season = booking.season
    held = [line for line in booking.lines if line.state == "held"]
    bed_ids = sorted({line.bed_id for line in held})
    listing, _prices = _bookable_listing(bed_ids, season, now)
    prices, _place = _terms_in_force(season.id, season.year, listing.id, bed_ids, now)  # in force at commit
    nights = stay_nights(booking.check_in, booking.check_out)
    db.session.execute(update(BedNight).where(BedNight.booking_id == booking.id, BedNight.state == "held")
                       .values(state="booked"))
    for bed_id, price in prices.items():
        db.session.execute(update(BedNight).where(BedNight.booking_id == booking.id, BedNight.bed_id == bed_id)
                           .values(price_ore=price))
    before = {"status": booking.status, "total_ore": booking.total_ore}
    booking.status = "confirmed"
    booking.confirmed_at = now
    booking.expires_at = None
    booking.total_ore = sum(prices.values()) * len(nights)
    _issue_invoice(booking, season.year, now)
    form_contract(booking, prepare_contract(
        season, listing, delegation_id=booking.delegation_id, coordinator_id=actor.user_id,
        lines=_contract_lines(bed_ids, nights, prices), accepted_at=now, ip=actor.ip))
    audit.record(actor, "booking.offer_accepted", "booking", booking.id, before=before,
                 after={"status": booking.status, "total_ore": booking.total_ore}, now=now)
    db.session.flush()
    db.session.expire(booking, ["lines", "contract"])
    events.emit(events.BOOKING_CONFIRMED, booking=booking, now=now)
    return booking


def release_hold(booking: Booking, *, now: datetime, actor: Actor) -> None:
    """End an unpaid hold or an unaccepted offer now, inside the caller's unit of work (flush only), on the
    booking row the caller has locked (`locked`): a hold confirmed meanwhile is left alone."""
    if booking.status == "awaiting_payment":
        expire_booking(booking, now, actor)
