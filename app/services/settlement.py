"""Settlement: applying what Stripe says about a PaymentIntent, the one way a payment confirms a booking.

`apply_intent` locks the booking and the payment, re-checks both and moves them forward only: a
final state never changes and a repeat changes nothing. Money that cannot buy the beds (late, after a
cancellation, a second payment) is queued for a full refund, sent after commit.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import BedNight, Booking, Payment
from app.services import audit, events
from app.services.access import locked_booking
from app.services.availability import taken_bed_nights
from app.services.base import Actor, now_or, unit_of_work
from app.services.errors import DomainError
from app.services.hoarding import enforce_organisation_limits
from app.services.ledger import REFUND_REASONS, add_refund
from app.services.refunds import process_pending_refunds
from app.services.stripe_gateway import CURRENCY, IntentView

log = logging.getLogger(__name__)

FINAL_STATUSES = ("succeeded", "canceled")


def others_on_beds(booking: Booking) -> list:
    """Bed-nights of this booking's lines now occupied by anything else."""
    bed_ids = sorted({line.bed_id for line in booking.lines})
    own = {(line.bed_id, line.night) for line in booking.lines if line.state in ("held", "booked")}
    return [pair for pair in taken_bed_nights(bed_ids, booking.check_in, booking.check_out) if pair not in own]


def _payment_for(intent: IntentView) -> Payment | None:
    payment = db.session.scalar(select(Payment).where(Payment.stripe_payment_intent_id == intent.id))
    if payment is None and intent.metadata.get("attempt_key"):
        payment = db.session.scalar(select(Payment).where(Payment.attempt_key == intent.metadata["attempt_key"]))
        if payment is not None and payment.stripe_payment_intent_id not in (None, intent.id):
            return None
    if payment is None or str(payment.booking_id) != intent.metadata.get("booking_id", str(payment.booking_id)):
        return None
    return payment


def _queue_full_refund(booking: Booking, payment: Payment, reason: str, now: datetime) -> None:
    add_refund(booking.id, payment.id, payment.amount_ore, reason, now)
    booking.refund_reason = reason
    events.emit(events.REFUND_QUEUED, booking=booking, reason=REFUND_REASONS[reason], amount_ore=payment.amount_ore,
                now=now)
    audit.record(Actor.system(), "payment.refund_queued", "booking", booking.id,
                 after={"payment_id": payment.id, "amount_ore": payment.amount_ore, "reason": reason}, now=now)


def _confirm(booking: Booking, payment: Payment, now: datetime) -> None:
    db.session.execute(update(BedNight).where(BedNight.booking_id == booking.id, BedNight.state == "held")
                       .values(state="booked"))
    booking.status = "confirmed"
    booking.confirmed_at = now
    audit.record(Actor.system(), "booking.confirmed", "booking", booking.id,
                 after={"payment_id": payment.id, "payment_intent_id": payment.stripe_payment_intent_id}, now=now)
    _announce(booking, now)


def _announce(booking: Booking, now: datetime) -> None:
    db.session.flush()
    db.session.expire(booking, ["lines"])
    events.emit(events.BOOKING_CONFIRMED, booking=booking, now=now)


def _retake(booking: Booking, payment: Payment, now: datetime) -> str | None:
    """Take a lapsed hold's bed-nights back for a late payment, if nobody else has them and the organisation
    stays within its limits; else the refund's reason."""
    if others_on_beds(booking):
        return "late_payment_beds_taken"
    try:
        # Its lapsed bed-nights no longer count: booked again they must fit the organisation's limit like any.
        enforce_organisation_limits(booking.delegation_id, booking.season_id, bed_nights=len(booking.lines),
                                    card_hold=False, now=now)
    except DomainError:
        return "late_payment_over_limit"
    try:
        with db.session.begin_nested():
            db.session.execute(update(BedNight).where(BedNight.booking_id == booking.id,
                                                      BedNight.state.in_(("held", "released")))
                               .values(state="booked", released_at=None))
    except IntegrityError:  # someone took a bed-night between our look and our write
        return "late_payment_beds_taken"
    booking.status = "confirmed"
    booking.confirmed_at = now
    booking.cancelled_at = None
    audit.record(Actor.system(), "booking.confirmed_late", "booking", booking.id,
                 after={"payment_id": payment.id, "payment_intent_id": payment.stripe_payment_intent_id}, now=now)
    _announce(booking, now)
    return None


def _settle(booking: Booking, payment: Payment, now: datetime) -> bool:
    """Money arrived for `payment`: confirm, or refund when it cannot buy the beds. True when a refund was queued."""
    if booking.status in ("confirmed", "completed"):
        others = db.session.scalar(select(func.count(Payment.id)).where(
            Payment.booking_id == booking.id, Payment.status == "succeeded", Payment.id != payment.id))
        if others:
            _queue_full_refund(booking, payment, "duplicate_payment", now)
            return True
        return False
    if booking.status == "awaiting_payment" and all(line.state == "held" for line in booking.lines):
        _confirm(booking, payment, now)
        return False
    if booking.status in ("awaiting_payment", "expired"):
        if booking.status == "awaiting_payment":
            booking.status = "expired"
        refusal = _retake(booking, payment, now)
        if refusal is None:
            return False
        booking.refund_ore = payment.amount_ore
        _queue_full_refund(booking, payment, refusal, now)
        return True
    _queue_full_refund(booking, payment, "payment_after_cancellation", now)
    return True


def apply_intent_locked(intent: IntentView, now: datetime) -> tuple[int | None, bool]:
    """Bring our payment row and booking in line with the intent (flush only). Returns (booking_id, refund_queued)."""
    found = _payment_for(intent)
    if found is None:
        return None, False
    booking = locked_booking(found.booking_id)
    payment = db.session.scalars(select(Payment).where(Payment.id == found.id).with_for_update()
                                 .execution_options(populate_existing=True)).one()
    if payment.stripe_payment_intent_id is None:
        payment.stripe_payment_intent_id = intent.id
    if payment.status in FINAL_STATUSES or payment.status == intent.status:
        return booking.id, False  # forward only: a final state never changes, a repeat changes nothing
    if intent.status == "requires_payment_method" and payment.status == "failed":
        return booking.id, False
    if intent.status == "succeeded" and (intent.amount != payment.amount_ore or intent.currency != CURRENCY):
        payment.failure_message = f"Stripe reports {intent.amount} {intent.currency}, expected {payment.amount_ore}."
        log.error("payment %s: amount mismatch with %s", payment.id, intent.id)
        return booking.id, False
    before = payment.status
    payment.status = intent.status
    payment.updated_at = now
    if intent.error_message:
        payment.failure_message = intent.error_message[:500]
    audit.record(Actor.system(), "payment.status", "payment", payment.id, before={"status": before},
                 after={"status": payment.status}, now=now)
    refund_queued = False
    if intent.status == "succeeded":
        payment.succeeded_at = now
        refund_queued = _settle(booking, payment, now)
    return booking.id, refund_queued


def apply_intent(intent: IntentView, *, now: datetime | None = None) -> int | None:
    """Apply a PaymentIntent's current state (idempotent); send any refund it caused after commit."""
    now = now_or(now)
    with unit_of_work():
        booking_id, refund_queued = apply_intent_locked(intent, now)
    if refund_queued:
        process_pending_refunds(booking_id, now=now)
    return booking_id
