"""The rehousing guarantee (issue 17, API.md "When a host breaks the contract").

When a host breaks a contract, comparable free beds (the same number of beds for the same nights, walking minutes
at most 10 more than the breached listing's, within the season's cap, never the breaching host's own listings; one
or several listings, chosen as the group proposals choose) are held for the coordinator as booking(s) with status
`offered` for 48 hours. Their bed-nights are `held` rows under the same UNIQUE index as every booking's, so an offer
can never double-book. Each offered bed-night costs min(the new bed's price, an original bed-night's price): the
night's new beds, cheapest first, are paired with the breached contract's prices of that night, cheapest first, so
no bed-night costs the coordinator more than one of the breached contract.

Accepting (`accept`) forms each part's own contract, which names the breached contract in its snapshot
(`rehousing`), with the breached booking's payment method: on invoice the booking is confirmed at once; by card it
becomes an ordinary unpaid card hold (`awaiting_payment`, the season's hold time) that the coordinator pays as any
card booking, and it is confirmed when the payment arrives. When an accepted offer is confirmed, the difference
(the new listing's price in force at acceptance less the price offered, over every bed-night) is written once
(UNIQUE per offer) as a `HostDeduction` of the breaching host: the ledger adds it to the new host's share and the
breaching host's payout statement shows it withheld. Declining or lapsing (`lapse_due`) releases the beds.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import BedNight, Booking, HostDeduction, Listing
from app.services import audit, events
from app.services.access import locked_booking, visible_booking
from app.services.availability import free_beds_query
from app.services.base import Actor, local_date, now_or, unit_of_work
from app.services.contracts import form_contract, prepare_contract, snapshot_of
from app.services.errors import Conflict, DomainError, Forbidden, ValidationFailed
from app.services.inventory import (
    check_beds_still_offered,
    contract_lines,
    expire_booking,
    issue_invoice,
    terms_in_force,
)
from app.services.listings import stay_nights
from app.services.proposals import MAX_LISTINGS, offers_from_rows, proposals_from

OFFER_HOURS = 48
EXTRA_WALKING_MINUTES = 10
OFFERED = "offered"


@dataclass(frozen=True)
class RehousingOffer:
    booking_ids: list[int]
    expires_at: datetime

    def as_json(self) -> dict:
        return {"booking_id": self.booking_ids[0], "booking_ids": self.booking_ids,
                "expires_at": self.expires_at.astimezone(UTC).isoformat()}


def is_rehousing(booking: Booking) -> bool:
    return booking.rehoused_from_id is not None


# ---------------------------------------------------------------------------------------------
# Making an offer (inside the breach's unit of work)
# ---------------------------------------------------------------------------------------------


def _runs(lines: list[tuple[int, date, int]]) -> list[tuple[date, date, list[list[int]]]]:
    """Group (bed_id, night, price) lines into stays: consecutive nights with the same number of beds.
    Returns (check_in, check_out, [prices of each night, ascending])."""
    by_night: dict[date, list[int]] = defaultdict(list)
    for _bed, night, price in lines:
        by_night[night].append(price)
    runs: list[tuple[date, date, list[list[int]]]] = []
    for night in sorted(by_night):
        prices = sorted(by_night[night])
        if runs and runs[-1][1] == night and len(runs[-1][2][0]) == len(prices):
            check_in, _end, nightly = runs[-1]
            runs[-1] = (check_in, night + timedelta(days=1), [*nightly, prices])
        else:
            runs.append((night, night + timedelta(days=1), [prices]))
    return runs


def offer_for(breached: Booking, lines: list[tuple[int, date, int]], *, now: datetime) -> RehousingOffer | None:
    """Hold comparable beds for the coordinator of a breached booking, for these of its lost bed-nights
    ((bed_id, night, contract price)), inside the caller's unit of work (flush only). Nights already passed are
    not rehoused. Returns None when no comparable beds are free."""
    today = local_date(now)
    lines = [line for line in lines if line[1] >= today]
    if not lines:
        return None
    season = breached.season
    walking = _walking_minutes(breached) + EXTRA_WALKING_MINUTES
    expires_at = now + timedelta(hours=OFFER_HOURS)
    made: list[int] = []
    for check_in, check_out, nightly in _runs(lines):
        ids = _offer_run(breached, season, check_in, check_out, nightly, walking, expires_at, now)
        made.extend(ids)
    if not made:
        return None
    audit.record(Actor.system(), "booking.rehousing_offered", "booking", breached.id,
                 after={"booking_ids": made, "expires_at": expires_at}, now=now)
    events.emit(events.REHOUSING_OFFERED, breached=breached, booking_ids=made, expires_at=expires_at, now=now)
    return RehousingOffer(made, expires_at)


def _walking_minutes(breached: Booking) -> int:
    if breached.contract is not None:
        minutes = (snapshot_of(breached.contract).get("property") or {}).get("walking_minutes")
        if isinstance(minutes, int):
            return minutes
    return breached.listing.walking_minutes


def _offer_run(breached: Booking, season, check_in: date, check_out: date, nightly: list[list[int]],
               walking: int, expires_at: datetime, now: datetime) -> list[int]:
    beds = len(nightly[0])
    free = free_beds_query(season, check_in, check_out, now, max_walking_minutes=walking,
                           exclude_host_id=breached.host_id)
    rows = db.session.connection().execute(
        select(free.c.listing_id, free.c.title, free.c.walking_minutes, free.c.bed_id, free.c.price_ore)
        .where(free.c.price_rank <= beds).order_by(free.c.listing_id, free.c.price_rank)).all()
    nights = (check_out - check_in).days
    for proposal in proposals_from(offers_from_rows(rows), beds, MAX_LISTINGS, nights):
        try:
            # A savepoint: losing a race for a bed must not undo the breach that is being recorded.
            with db.session.begin_nested():
                return _hold(breached, season, proposal.parts, check_in, check_out, nightly, expires_at, now)
        except (IntegrityError, Conflict, DomainError):  # taken, removed or no longer bookable since the search
            continue
    return []


def _hold(breached: Booking, season, parts, check_in: date, check_out: date, nightly: list[list[int]],
          expires_at: datetime, now: datetime) -> list[int]:
    nights = stay_nights(check_in, check_out)
    # Every part's prices in force, under the booking locks (season, listing, beds, prices), listing by listing.
    priced: list[tuple[int, int, int]] = []  # (price, bed_id, listing_id)
    for part in sorted(parts, key=lambda part: part.listing_id):
        prices, _place = terms_in_force(season.id, season.year, part.listing_id, part.bed_ids, now)
        priced.extend((prices[bed_id], bed_id, part.listing_id) for bed_id in part.bed_ids)
    priced.sort()
    offered: dict[tuple[int, date], int] = {}
    for night, originals in zip(nights, nightly, strict=True):
        for (price, bed_id, _listing), original in zip(priced, originals, strict=True):
            offered[(bed_id, night)] = min(price, original)
    ids = []
    for part in sorted(parts, key=lambda part: part.listing_id):
        listing = db.session.get_one(Listing, part.listing_id)
        booking = Booking(
            delegation_id=breached.delegation_id, season_id=season.id, listing_id=listing.id,
            host_id=listing.host_id, coordinator_id=breached.coordinator_id, status=OFFERED,
            payment_method=breached.payment_method,
            total_ore=sum(offered[(bed_id, night)] for bed_id in part.bed_ids for night in nights),
            refund_ore=0, check_in=check_in, check_out=check_out, created_at=now, expires_at=expires_at,
            rehoused_from_id=breached.id)
        db.session.add(booking)
        db.session.flush()
        # Inserted in one global order (listing, bed, night) so that two offers racing for the same beds wait
        # for each other at the UNIQUE index instead of deadlocking.
        db.session.add_all([BedNight(bed_id=bed_id, night=night, state="held", booking_id=booking.id,
                                     price_ore=offered[(bed_id, night)], created_at=now)
                            for bed_id in sorted(part.bed_ids) for night in nights])
        db.session.flush()  # the UNIQUE index on occupied bed-nights decides here
        check_beds_still_offered(part.bed_ids)
        audit.record(Actor.system(), "booking.offer_held", "booking", booking.id,
                     after={"bed_ids": part.bed_ids, "check_in": check_in, "check_out": check_out,
                            "total_ore": booking.total_ore, "expires_at": expires_at,
                            "rehoused_from_id": breached.id}, now=now)
        ids.append(booking.id)
    return ids


def current_offer(breached_id: int) -> RehousingOffer | None:
    """The open offer made for a breached booking (its `offered` bookings), or None."""
    rows = db.session.execute(select(Booking.id, Booking.expires_at).where(
        Booking.rehoused_from_id == breached_id, Booking.status == OFFERED).order_by(Booking.id)).all()
    if not rows:
        return None
    return RehousingOffer([row[0] for row in rows], rows[0][1])


# ---------------------------------------------------------------------------------------------
# Accepting, declining, lapsing
# ---------------------------------------------------------------------------------------------


def offer_part_ids(booking: Booking) -> list[int]:
    """Every booking of the offer this rehousing booking belongs to (made together, for one breach)."""
    return list(db.session.scalars(select(Booking.id).where(
        Booking.rehoused_from_id == booking.rehoused_from_id, Booking.created_at == booking.created_at)
        .order_by(Booking.id)))


def _offer_parts(actor: Actor, booking_id: int) -> tuple[Booking, list[int]]:
    booking = visible_booking(actor, booking_id)
    if booking.coordinator_id != actor.user_id:
        raise Forbidden(_("Bara bokningens samordnare kan svara på erbjudandet."))
    if booking.rehoused_from_id is None:
        raise Conflict(_("Bokningen är inget erbjudande om ersättningsboende."), code="not_an_offer",
                       status_now=booking.status)
    return booking, offer_part_ids(booking)


def _locked_offer(ids: list[int], now: datetime) -> list[Booking]:
    parts = [locked_booking(booking_id) for booking_id in ids]  # ascending ids: one lock order
    if any(part.status != OFFERED for part in parts):
        raise Conflict(_("Erbjudandet är redan besvarat eller har gått ut."), code="state_changed",
                       status_now=next(part.status for part in parts if part.status != OFFERED))
    if any(part.expires_at is not None and part.expires_at <= now for part in parts):
        raise Conflict(_("Erbjudandet har gått ut; bäddarna är åter lediga för alla."), code="offer_expired")
    return parts


def accept(actor: Actor, booking_id: int, *, accept_contract: bool, now: datetime | None = None) -> list[Booking]:
    """The coordinator accepts a rehousing offer (every part of it): each part gets its own contract naming the
    breached one, at the offered price, with the breached booking's payment method."""
    now = now_or(now)
    if not accept_contract:
        raise ValidationFailed({"accept_contract": [_("Du måste godkänna avtalet för att ta emot erbjudandet.")]})
    _booking, ids = _offer_parts(actor, booking_id)
    with unit_of_work():
        parts = _locked_offer(ids, now)
        for part in parts:
            _accept_part(actor, part, now)
    return parts


def _accept_part(actor: Actor, booking: Booking, now: datetime) -> None:
    season = booking.season
    breached = db.session.get_one(Booking, booking.rehoused_from_id)
    held = [line for line in booking.lines if line.state == "held"]
    bed_ids = sorted({line.bed_id for line in held})
    prices, _place = terms_in_force(season.id, season.year, booking.listing_id, bed_ids, now)
    offered = {(line.bed_id, line.night): line.price_ore or 0 for line in held}
    # A price lowered since the offer lowers what the coordinator pays; never above what was offered.
    for line in held:
        line.price_ore = min(prices[line.bed_id], offered[(line.bed_id, line.night)])
    difference = sum(prices[line.bed_id] - (line.price_ore or 0) for line in held)
    nights = stay_nights(booking.check_in, booking.check_out)
    lines = [{**line, "price_ore": next(h.price_ore for h in held
                                        if h.bed_id == line["bed_id"] and h.night.isoformat() == line["night"])}
             for line in contract_lines(bed_ids, nights, prices)]
    before = {"status": booking.status, "total_ore": booking.total_ore}
    booking.total_ore = sum(line["price_ore"] for line in lines)
    is_card = booking.payment_method == "card"
    if is_card:
        booking.status = "awaiting_payment"
        booking.expires_at = now + timedelta(minutes=season.hold_minutes)
    else:
        booking.status = "confirmed"
        booking.confirmed_at = now
        booking.expires_at = None
        db.session.execute(update(BedNight).where(BedNight.booking_id == booking.id, BedNight.state == "held")
                           .values(state="booked"))
        issue_invoice(booking, season.year, now)
    assert actor.user_id is not None  # a person accepts  # nosec B101
    draft = prepare_contract(season, booking.listing, delegation_id=booking.delegation_id,
                             coordinator_id=actor.user_id, lines=lines, accepted_at=now, ip=actor.ip)
    draft.parts["rehousing"] = {
        "breached_booking_id": breached.id,
        "breached_contract": breached.contract.number if breached.contract is not None else None,
        "breaching_host_id": breached.host_id,
        "list_total_ore": booking.total_ore + difference,
        "difference_ore": difference,
        "difference_paid_by": "breaching host",
    }
    form_contract(booking, draft)
    audit.record(actor, "booking.rehousing_accepted", "booking", booking.id, before=before,
                 after={"status": booking.status, "total_ore": booking.total_ore, "difference_ore": difference},
                 now=now)
    db.session.flush()
    db.session.expire(booking, ["lines", "contract"])
    if not is_card:
        record_deduction(booking, now)
        events.emit(events.BOOKING_CONFIRMED, booking=booking, now=now)


def record_deduction(booking: Booking, now: datetime) -> HostDeduction | None:
    """Write, once, what the breaching host owes for a confirmed rehousing booking (flush only); idempotent."""
    if booking.rehoused_from_id is None or booking.contract is None:
        return None
    terms = snapshot_of(booking.contract).get("rehousing") or {}
    amount = int(terms.get("difference_ore") or 0)
    if amount <= 0:
        return None
    existing = db.session.scalar(select(HostDeduction).where(HostDeduction.offer_booking_id == booking.id))
    if existing is not None:
        return existing
    deduction = HostDeduction(host_id=int(terms["breaching_host_id"]), breached_booking_id=booking.rehoused_from_id,
                              offer_booking_id=booking.id, amount_ore=amount, created_at=now)
    db.session.add(deduction)
    db.session.flush()
    audit.record(Actor.system(), "host.deduction", "user", deduction.host_id,
                 after={"offer_booking_id": booking.id, "breached_booking_id": booking.rehoused_from_id,
                        "amount_ore": amount}, now=now)
    return deduction


def _on_confirmed(booking: Booking, now: datetime, **_ignored) -> None:
    """A card-paid rehousing booking is confirmed by its payment: its difference is owed now."""
    if booking.rehoused_from_id is not None and booking.payment_method == "card":
        record_deduction(booking, now)


def decline(actor: Actor, booking_id: int, *, now: datetime | None = None) -> list[Booking]:
    """The coordinator declines a rehousing offer: every part's beds are released at once."""
    now = now_or(now)
    _booking, ids = _offer_parts(actor, booking_id)
    with unit_of_work():
        parts = [locked_booking(part_id) for part_id in ids]
        if any(part.status != OFFERED for part in parts):
            raise Conflict(_("Erbjudandet är redan besvarat eller har gått ut."), code="state_changed")
        for part in parts:
            _release(part, now, actor, "booking.rehousing_declined")
    return parts


def _release(booking: Booking, now: datetime, actor: Actor, action: str) -> None:
    booking.status = "expired"
    booking.cancelled_at = now
    db.session.execute(update(BedNight).where(BedNight.booking_id == booking.id, BedNight.state == "held")
                       .values(state="released", released_at=now))
    audit.record(actor, action, "booking", booking.id, after={"expires_at": booking.expires_at}, now=now)


def lapse_due(now: datetime | None = None) -> int:
    """Release every rehousing offer past its 48 hours (rows taken FOR UPDATE SKIP LOCKED, re-checked under the
    lock, so any number of workers may run it at once). Returns how many bookings lapsed."""
    now = now_or(now)
    with unit_of_work():
        due = list(db.session.scalars(select(Booking).where(
            Booking.status == OFFERED, Booking.expires_at <= now).order_by(Booking.id)
            .with_for_update(skip_locked=True).execution_options(populate_existing=True)))
        for booking in due:
            expire_booking(booking, now, Actor.system())
    return len(due)


# ---------------------------------------------------------------------------------------------
# What the ledger reads
# ---------------------------------------------------------------------------------------------


def deductions_of(host_id: int) -> list[HostDeduction]:
    return list(db.session.scalars(select(HostDeduction).where(HostDeduction.host_id == host_id)
                                   .order_by(HostDeduction.created_at, HostDeduction.id)))


def register() -> None:
    events.subscribe(events.BOOKING_CONFIRMED, _on_confirmed)
