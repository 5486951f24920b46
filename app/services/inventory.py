"""Bed-night inventory: which beds are bookable at what price, holds that lapse, invoices and contract lines.

The pieces every way of taking beds shares (a booking, a waiting-list offer, a host's block): the
statements that read the beds and their occupants, the re-check under the write lock, and the
UNIQUE index on occupied bed-nights that decides a race.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.i18n import local_date as local_date_text
from app.i18n import local_dt
from app.models import OCCUPYING_STATES, Bed, BedNight, BedPrice, Booking, HostProfile, Listing, Room, Season
from app.services import audit, events
from app.services.availability import check_not_past, check_stay, taken_bed_nights
from app.services.base import Actor, local_date, now_or, unit_of_work
from app.services.contracts import next_number
from app.services.errors import Conflict, DomainError, Forbidden, ValidationFailed
from app.services.listings import owned_bed, stay_nights
from app.services.seasons import season_for_stay

if TYPE_CHECKING:
    from sqlalchemy import CursorResult


MAX_BEDS_PER_BOOKING = 100
INVOICE_DAYS = 30
CANCELLABLE = ("awaiting_payment", "confirmed")
LIVE_STATUSES = ("awaiting_payment", "confirmed", "completed")  # bookings whose beds a member sleeps in
# Bookings whose held bed-nights lapse at expires_at: an unpaid hold, an unaccepted rehousing offer.
HOLD_STATUSES = ("awaiting_payment", "offered")


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


def _not_bookable_reason(published, vetting_status, accepted_terms_version, season, now, all_priced, *,
                         by_draw: bool = False) -> str | None:
    """Why a listing cannot be booked now, or None (the same words before and under the lock).

    `by_draw`: the allocation draw forms its orders before bookings open (API.md "The allocation round"), so
    the opening time does not apply to it; everything else does."""
    if not published:
        return _("Boendet är inte publicerat.")
    if vetting_status != "approved":
        return _("Värden kan inte ta emot bokningar just nu.")
    if accepted_terms_version != season.terms_version:
        return _("Värden har ännu inte godkänt villkoren för %(year)s.", year=season.year)
    if not by_draw and not season.is_open(now):
        return _("Bokningen för %(year)s öppnar %(opens)s.", year=season.year,
                 opens=local_dt(season.bookings_open_at, "d MMM y HH:mm"))
    if not all_priced:
        return _("Några av bäddarna saknar pris den här säsongen.")
    return None


def _not_bookable(reason: str) -> DomainError:
    return DomainError(_("%(reason)s Ingenting bokades.", reason=reason), code="not_bookable")


def bookable_listing(bed_ids: list[int], season, now: datetime, *, by_draw: bool = False
                     ) -> tuple[Listing, dict[int, int]]:
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
                                  len(prices) == len(bed_ids), by_draw=by_draw)
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


# The beds FOR KEY SHARE before their prices: the lock their bed-nights' foreign key takes anyway, taken first,
# so that a host removing one of them (`listings.remove_bed`: the bed FOR UPDATE, then its prices) either
# waits for this booking or is wholly before it, never holding the bed while this holds its price (deadlock).
_LOCKED_BEDS = (
    select(Bed.id).where(Bed.id.in_(bindparam("bed_ids", expanding=True)), Bed.removed_at.is_(None))
    .order_by(Bed.id)
    .with_for_update(read=True, key_share=True)
)


_LOCKED_PRICES = (
    select(BedPrice.bed_id, BedPrice.price_ore)
    .where(BedPrice.season_id == bindparam("season_id"), BedPrice.bed_id.in_(bindparam("bed_ids", expanding=True)))
    .order_by(BedPrice.bed_id)
    .with_for_update(read=True)
)


def terms_in_force(season_id: int, year: int, listing_id: int, bed_ids: list[int], now: datetime, *,
                   by_draw: bool = False) -> tuple[dict[int, int], dict]:
    """Inside the booking's unit of work: re-check the listing is bookable and read each bed's price and the
    property as they are in force now, locked until commit (three queries; plain values in, so that no expired
    object is reloaded). Returns (prices, property)."""
    row = db.session.execute(_LOCKED_SEASON_AND_LISTING, {"season_id": season_id, "listing_id": listing_id}).one()
    (cap, terms_version, open_at, published, accepted_terms, title, address, postal_code, walking_minutes,
     status) = row
    offered = list(db.session.scalars(_LOCKED_BEDS, {"bed_ids": bed_ids}))
    if len(offered) != len(bed_ids):
        raise bed_removed_error(sorted(set(bed_ids) - set(offered)))
    prices = {bed_id: min(price, cap) for bed_id, price in db.session.execute(
        _LOCKED_PRICES, {"season_id": season_id, "bed_ids": bed_ids})}
    locked_season = _SeasonTerms(year, terms_version, open_at)
    reason = _not_bookable_reason(published, status, accepted_terms, locked_season, now, len(prices) == len(bed_ids),
                                  by_draw=by_draw)
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


def occupants(bed_ids: list[int], check_in: date, check_out: date, now: datetime) -> tuple[list, list[int]]:
    """The occupied (bed, night) pairs of the stay, and the unpaid holds among them that are past their time."""
    rows = db.session.execute(_OCCUPANTS, {"bed_ids": bed_ids, "check_in": check_in, "check_out": check_out}).all()
    stale = sorted({booking_id for _, _, state, booking_id, status, expires_at in rows
                    if state == "held" and status in HOLD_STATUSES and expires_at is not None
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


def release_expired_holds(bed_ids: list[int], check_in: date, check_out: date, now: datetime
                           ) -> list[tuple[int, date]]:
    """Expire holds past their time on the bed-nights this request needs; return what stays occupied."""
    taken, stale = occupants(bed_ids, check_in, check_out, now)
    if not stale:
        return taken
    # Locked, so that a payment confirming one of these holds at this moment is not overwritten.
    for booking in db.session.scalars(select(Booking).where(
            Booking.id.in_(stale), Booking.status.in_(HOLD_STATUSES), Booking.expires_at <= now)
            .with_for_update().execution_options(populate_existing=True)):
        expire_booking(booking, now, Actor.system())
    db.session.flush()
    return occupants(bed_ids, check_in, check_out, now)[0]


def check_beds_still_offered(bed_ids: list[int]) -> None:
    """After inserting bed-nights (flush only): 409 state_changed if the host removed one of these beds since
    they were read. The inserts hold a key-share lock on each bed, so a removal not yet committed waits for
    this transaction and then sees its bed-nights; one committed before is seen here."""
    removed = sorted(db.session.scalars(select(Bed.id).where(Bed.id.in_(bed_ids), Bed.removed_at.is_not(None))))
    if removed:
        raise bed_removed_error(removed)


def bed_removed_error(bed_ids: list[int]) -> Conflict:
    """409 state_changed: the host removed one of these beds while the booking was being made."""
    return Conflict(_("Värden har tagit bort en av bäddarna medan du bokade. Ingenting bokades; sök igen."),
                    code="state_changed", bed_ids=bed_ids)


def issue_invoice(booking: Booking, year: int, now: datetime) -> None:
    """Give an invoice booking its consecutive number and due date (flush only)."""
    seq = next_number("invoice", year)
    booking.invoice_number = f"F-{year}-{seq:06d}"
    booking.invoice_due_on = max(local_date(now), min(local_date(now) + timedelta(days=INVOICE_DAYS),
                                                      booking.check_in - timedelta(days=1)))
    from app.services import invoices  # the ledger's invoice, with its OCR reference
    invoices.issue(booking, now)


def contract_lines(bed_ids, nights, prices) -> list[dict]:
    labels = dict(db.session.execute(
        select(Bed.id, Room.name + " / " + Bed.label).join(Room, Room.id == Bed.room_id).where(Bed.id.in_(bed_ids))
    ).tuples().all())
    if len(labels) != len(set(bed_ids)):  # the host deleted a bed since the booking read it (no lock held yet)
        raise bed_removed_error(sorted(set(bed_ids) - set(labels)))
    return [{"bed_id": bed_id, "bed": labels[bed_id], "night": night.isoformat(), "price_ore": prices[bed_id]}
            for night in nights for bed_id in bed_ids]


def block_nights(actor: Actor, bed_id: int, check_in: date, check_out: date, *,
                 now: datetime | None = None) -> list[BedNight]:
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
            taken = release_expired_holds([bed_id], check_in, check_out, now)
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
                   now: datetime | None = None) -> int:
    """Free a host's own blocked nights again (never a booked or breached night)."""
    now = now_or(now)
    owned_bed(actor, bed_id)
    with unit_of_work():
        result = db.session.execute(update(BedNight).where(
            BedNight.bed_id == bed_id, BedNight.night >= check_in, BedNight.night < check_out,
            BedNight.state == "host_block").values(state="released", released_at=now))
        audit.record(actor, "bed.unblocked", "bed", bed_id, after={"check_in": check_in, "check_out": check_out},
                     now=now)
    return cast("CursorResult[Any]", result).rowcount  # an UPDATE's result is a CursorResult
