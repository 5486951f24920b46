"""Waiting-list offers: beds held for a delegation, turned into a booking when the offer is accepted."""
from __future__ import annotations

from datetime import date, datetime

from flask_babel import gettext as _
from sqlalchemy import update

from app.extensions import db
from app.models import BedNight, Booking, Delegation, Listing
from app.services import audit, events
from app.services.base import Actor
from app.services.contracts import form_contract, prepare_contract
from app.services.errors import Conflict
from app.services.hoarding import enforce_organisation_limits
from app.services.inventory import (
    bookable_listing,
    check_beds_still_offered,
    contract_lines,
    expire_booking,
    issue_invoice,
    terms_in_force,
)
from app.services.listings import stay_nights

OFFER_KIND = "waitlist_offer"


def is_offer(booking: Booking) -> bool:
    return booking.kind == OFFER_KIND


def hold_beds_for_offer(delegation: Delegation, listing_id: int, season, prices: dict[int, int], check_in: date,
                        check_out: date, *, expires_at: datetime, now: datetime) -> Booking:
    """Hold these beds for a waiting-list offer inside the caller's unit of work (flush only).

    The hold is an `awaiting_payment` invoice booking without a contract: no one has accepted
    anything yet. `expire_holds` ends it at `expires_at` like any unpaid hold; accepting it
    (`confirm_offered_hold`) forms the contract. Raises IntegrityError when a bed-night was taken, and
    DomainError `organisation_limit` when the offer would take the organisation above its bed-night limit.
    """
    listing = db.session.get_one(Listing, listing_id)
    bed_ids = sorted(prices)
    nights = stay_nights(check_in, check_out)
    # An unaccepted offer holds bed-nights for the organisation like a booking: the same limit applies.
    enforce_organisation_limits(delegation.id, season.id, bed_nights=len(bed_ids) * len(nights), card_hold=False,
                                now=now)
    booking = Booking(
        delegation_id=delegation.id, season_id=season.id, listing_id=listing.id, host_id=listing.host_id,
        coordinator_id=delegation.coordinator_id, status="awaiting_payment", payment_method="invoice",
        total_ore=sum(prices.values()) * len(nights), refund_ore=0, check_in=check_in, check_out=check_out,
        created_at=now, expires_at=expires_at, kind=OFFER_KIND,
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
    listing, _prices = bookable_listing(bed_ids, season, now)
    prices, _place = terms_in_force(season.id, season.year, listing.id, bed_ids, now)  # in force at commit
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
    issue_invoice(booking, season.year, now)
    assert actor.user_id is not None  # a person accepts; only the system actor has no user  # nosec B101
    form_contract(booking, prepare_contract(
        season, listing, delegation_id=booking.delegation_id, coordinator_id=actor.user_id,
        lines=contract_lines(bed_ids, nights, prices), accepted_at=now, ip=actor.ip))
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
