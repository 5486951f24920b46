"""Card payments through Stripe: refunds that follow the contract.

Stripe is never called while a database write transaction is open.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import stripe
from flask import current_app
from sqlalchemy import func, select

from app.extensions import db
from app.models import Payment, Refund
from app.services import audit
from app.services.base import Actor, now_or, unit_of_work


def configure_stripe() -> None:
    stripe.api_key = current_app.config["STRIPE_SECRET_KEY"]
    if current_app.config.get("STRIPE_API_BASE"):
        stripe.api_base = current_app.config["STRIPE_API_BASE"]
    stripe.max_network_retries = 1


def refundable_ore(payment_id: int) -> int:
    """Captured minus everything refunded or on its way: a refund may never exceed it."""
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.status != "succeeded":
        return 0
    refunded = db.session.scalar(select(func.coalesce(func.sum(Refund.amount_ore), 0)).where(
        Refund.payment_id == payment_id, Refund.status == "succeeded")) or 0
    return payment.amount_ore - refunded


def process_pending_refunds(booking_id: Optional[int] = None, *, now: Optional[datetime] = None) -> list[int]:
    """Send pending (or failed, retried) refunds to Stripe; amounts are checked here, not by Stripe."""
    now = now_or(now)
    query = select(Refund.id).where(Refund.status.in_(("pending", "failed")), Refund.attempts < 10)
    if booking_id is not None:
        query = query.where(Refund.booking_id == booking_id)
    done = []
    for refund_id in db.session.scalars(query).all():
        refund = db.session.get(Refund, refund_id)
        payment = db.session.get(Payment, refund.payment_id) if refund.payment_id else None
        if payment is None or not payment.stripe_payment_intent_id:
            continue
        if refund.amount_ore > refundable_ore(payment.id):
            with unit_of_work():
                row = db.session.get(Refund, refund_id)
                row.status = "rejected"
                row.last_error = "Refund larger than what is left of the captured payment."
                row.updated_at = now
            continue
        intent_id = payment.stripe_payment_intent_id
        amount = refund.amount_ore
        db.session.commit()  # end the read transaction before calling Stripe
        configure_stripe()
        try:
            result = stripe.Refund.create(payment_intent=intent_id, amount=amount,
                                          idempotency_key=f"sangplats-refund-{refund_id}")
            error = None
        except stripe.StripeError as exc:
            result, error = None, str(exc.user_message or exc)[:500]
        with unit_of_work():
            row = db.session.get(Refund, refund_id)
            row.attempts += 1
            row.updated_at = now
            if result is not None:
                row.status = "succeeded"
                row.stripe_refund_id = result.id
                done.append(refund_id)
            else:
                row.status = "failed"
                row.last_error = error
            audit.record(Actor.system(), f"refund.{row.status}", "refund", refund_id,
                         after={"amount_ore": amount, "error": error}, now=now)
    return done


def after_cancellation(booking_id: int) -> None:
    """After a cancellation commits: pay back what the contract says."""
    process_pending_refunds(booking_id)


def refunded_ore_for_payment(payment_id: int) -> int:
    return db.session.scalar(select(func.coalesce(func.sum(Refund.amount_ore), 0)).where(
        Refund.payment_id == payment_id, Refund.status == "succeeded")) or 0


def after_holds_expired(booking_ids: list[int]) -> None:
    """After expired holds commit: cancel their PaymentIntents at Stripe."""
    for booking_id in booking_ids:
        cancel_open_intents(booking_id)


def cancel_open_intents(booking_id: int) -> None:
    """Cancel any PaymentIntent of this booking that has not taken money."""
    rows = db.session.scalars(select(Payment).where(
        Payment.booking_id == booking_id,
        Payment.status.in_(("requires_payment_method", "requires_confirmation", "requires_action", "created")),
        Payment.stripe_payment_intent_id.is_not(None))).all()
    targets = [(p.id, p.stripe_payment_intent_id) for p in rows]
    db.session.commit()
    if not targets:
        return
    configure_stripe()
    for payment_id, intent_id in targets:
        try:
            intent = stripe.PaymentIntent.cancel(intent_id)
            status = intent.status
        except stripe.StripeError:
            status = None
        if status:
            with unit_of_work():
                db.session.get(Payment, payment_id).status = status
