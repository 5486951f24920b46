"""Refunds: the refunds table is the outbox; amounts are checked against the ledger here, never left to Stripe.

A refund row is written by `ledger.add_refund` in the unit of work that decided it; after commit it
is claimed under its booking's lock (`sending`, one sender at a time), sent through the gateway, and
marked with what Stripe answered. Failed ones are retried by the jobs, up to a limit.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from app.extensions import db
from app.i18n import kr
from app.models import Booking, Payment, Refund
from app.services import audit, stripe_gateway
from app.services.access import locked_booking
from app.services.base import Actor, now_or, unit_of_work
from app.services.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from app.services.ledger import add_refund, captured_payment, left_to_send_ore, refundable_ore

MAX_REFUND_ATTEMPTS = 10
STALE_SENDING = timedelta(minutes=10)


def request_refund(actor: Actor, booking_id: int, amount_ore, *, now: datetime | None = None) -> Refund:
    """An admin pays back part of a card payment; never more than is left of what was captured."""
    now = now_or(now)
    if not actor.is_admin:
        raise Forbidden(_("Bara administratörer gör återbetalningar för hand."))
    if not isinstance(amount_ore, int) or isinstance(amount_ore, bool) or amount_ore <= 0:
        raise ValidationFailed({"amount_ore": [_("Ett positivt heltal i öre.")]})
    if db.session.get(Booking, booking_id) is None:
        raise NotFound(_("Bokningen finns inte."))
    with unit_of_work():
        locked_booking(booking_id)
        payment = captured_payment(booking_id)
        left = refundable_ore(payment.id) if payment else 0
        if amount_ore > left:
            raise DomainError(_("Högst %(left)s återstår att återbetala av bokningens kortbetalning.", left=kr(left)),
                              code="refund_exceeds_remaining", remaining_ore=left, field="amount_ore")
        assert payment is not None  # without one nothing is left, and amount_ore is positive  # nosec B101
        refund = add_refund(booking_id, payment.id, amount_ore, "admin", now)
        db.session.flush()
        audit.record(actor, "refund.requested", "refund", refund.id,
                     after={"booking_id": booking_id, "amount_ore": amount_ore}, now=now)
        refund_id = refund.id
    process_pending_refunds(booking_id, now=now)
    return db.session.get_one(Refund, refund_id)


def _claim_refund(refund_id: int, now: datetime) -> tuple[str, int, str] | None:
    """Check the amount against what is left and mark the refund `sending` (one sender at a time)."""
    with unit_of_work():
        refund = db.session.get_one(Refund, refund_id)
        locked_booking(refund.booking_id)
        refund = db.session.scalars(select(Refund).where(Refund.id == refund_id)
                                    .execution_options(populate_existing=True)).one()
        stale = refund.status == "sending" and refund.updated_at <= now - STALE_SENDING
        if refund.status not in ("pending", "failed") and not stale:
            return None
        if refund.payment_id is None:
            payment = captured_payment(refund.booking_id)
            refund.payment_id = payment.id if payment else None
        payment = db.session.get(Payment, refund.payment_id) if refund.payment_id else None
        if payment is None or payment.status != "succeeded" or not payment.stripe_payment_intent_id:
            refund.status, refund.last_error, refund.updated_at = "rejected", "No captured card payment.", now
            return None
        left = left_to_send_ore(payment, refund_id)
        if refund.amount_ore > left:
            refund.status, refund.updated_at = "rejected", now
            refund.last_error = (f"Refund of {refund.amount_ore} öre is more than the {left} öre "
                                 "left of the captured payment.")
            audit.record(Actor.system(), "refund.rejected", "refund", refund_id,
                         after={"amount_ore": refund.amount_ore, "left_ore": left}, now=now)
            return None
        refund.status, refund.updated_at = "sending", now
        refund.attempts += 1
        key = f"sangplats-refund-{payment.attempt_key}-{refund_id}"
        return payment.stripe_payment_intent_id, refund.amount_ore, key


def send_refund(refund_id: int, *, now: datetime | None = None) -> bool:
    """Send one refund to Stripe if it may go; True when Stripe accepted it."""
    now = now_or(now)
    claim = _claim_refund(refund_id, now)
    if claim is None:
        return False
    intent_id, amount, key = claim
    try:
        result = stripe_gateway.create_refund(intent_id, amount, key)
        error = None if result.get("status") not in ("failed", "canceled") else f"Stripe: {result.get('status')}"
    except stripe_gateway.StripeError as exc:
        result, error = None, str(exc.user_message or exc)[:500]
    with unit_of_work():
        refund = db.session.get_one(Refund, refund_id)
        refund.updated_at = now
        if error is None:
            assert result is not None  # no error: Stripe answered  # nosec B101
            refund.status, refund.stripe_refund_id, refund.last_error = "succeeded", result["id"], None
        else:
            refund.status, refund.last_error = "failed", error
        audit.record(Actor.system(), f"refund.{refund.status}", "refund", refund_id,
                     after={"amount_ore": amount, "error": error}, now=now)
    return error is None


def process_pending_refunds(booking_id: int | None = None, *, now: datetime | None = None) -> list[int]:
    """Send pending refunds, retry failed ones (up to a limit) and any stuck mid-send; returns those accepted."""
    now = now_or(now)
    query = select(Refund.id).where(Refund.attempts < MAX_REFUND_ATTEMPTS, Refund.status.in_(
        ("pending", "failed", "sending"))).order_by(Refund.id)
    if booking_id is not None:
        query = query.where(Refund.booking_id == booking_id)
    ids = list(db.session.scalars(query))
    db.session.commit()
    return [refund_id for refund_id in ids if send_refund(refund_id, now=now)]


def retry_refund(actor: Actor, refund_id: int, *, now: datetime | None = None) -> Refund:
    """An admin sends a failed refund again (also past the automatic retry limit)."""
    now = now_or(now)
    if not actor.is_admin:
        raise Forbidden(_("Bara administratörer gör om återbetalningar."))
    refund = db.session.get(Refund, refund_id)
    if refund is None:
        raise NotFound(_("Återbetalningen finns inte."))
    if refund.status != "failed":
        raise Conflict(_("Bara en misslyckad återbetalning kan göras om."), code="not_failed", status_now=refund.status)
    with unit_of_work():
        audit.record(actor, "refund.retry", "refund", refund_id, now=now)
    send_refund(refund_id, now=now)
    return db.session.get_one(Refund, refund_id)


def after_cancellation(booking_id: int) -> None:
    """After a cancellation commits: pay back what the contract says."""
    process_pending_refunds(booking_id)


def refresh_refund(stripe_refund_id: str, now: datetime) -> None:
    """A refund Stripe later reports failed goes back to `failed`, to be retried and shown to admins."""
    remote = stripe_gateway.fetch_refund(stripe_refund_id)
    if remote.get("status") not in ("failed", "canceled"):
        return
    refund = db.session.scalars(select(Refund).where(Refund.stripe_refund_id == stripe_refund_id)
                                .execution_options(populate_existing=True)).one_or_none()
    if refund is not None and refund.status == "succeeded":
        refund.status = "failed"
        refund.stripe_refund_id = None
        refund.last_error = f"Stripe reports the refund {remote.get('status')}: {remote.get('failure_reason')}"
        refund.updated_at = now
