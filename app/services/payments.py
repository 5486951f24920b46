"""Card payments through Stripe: attempts, confirmation, and PaymentIntents that lapse.

Stripe is never called inside unit_of_work(). Each attempt row is committed first (its
`attempt_key` is the Stripe idempotency key and rides along in the PaymentIntent's metadata),
then Stripe is called (through `stripe_gateway`, the one module that talks to it), then what
Stripe says is applied in a new unit of work by `settlement`, the one place where money turns a
hold into a confirmed booking. The API route, the pay page's return, the webhook (`webhooks`) and
the reconcile job all go through it, so any number of triggers in any order give one confirmation.
Refunds live in `refunds`, the figures (`refundable_ore`, `REFUND_REASONS`) in `ledger`, Stripe's
events in `webhooks`; callers import those names from there, not through this module.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask_babel import gettext as _
from sqlalchemy import func, select

from app.extensions import db
from app.labels import in_sentence
from app.models import Booking, Payment
from app.services import audit, stripe_gateway
from app.services.access import locked_booking, visible_booking
from app.services.base import Actor, now_or, unit_of_work
from app.services.errors import Conflict, DomainError, Forbidden, PaymentFailed, ValidationFailed
from app.services.ledger import captured_payment
from app.services.settlement import FINAL_STATUSES, apply_intent, others_on_beds
from app.services.stripe_gateway import IntentView, fetch_intent

log = logging.getLogger(__name__)

__all__ = [
    "OPEN_STATUSES", "PaymentResult", "after_holds_expired", "cancel_open_intents", "check_payable", "pay_booking",
    "setup_card_entry", "sync_booking",
]

OPEN_STATUSES = ("created", "requires_payment_method", "requires_confirmation", "requires_action", "processing",
                 "requires_capture")
IN_PROGRESS_WINDOW = timedelta(seconds=60)
PAYMENT_METHOD_ID = re.compile(r"^pm_[A-Za-z0-9_]{1,200}$")


def _coordinator_pays() -> str:
    return _("Bara bokningens samordnare betalar för den.")


def _declined(reason: str | None) -> str:
    """Stripe's reason when it gives one, and what the coordinator can do."""
    if reason:
        return _("Kortet nekades: %(reason)s Bokningen väntar fortfarande på betalning; prova ett annat kort, eller "
                 "boka med faktura, innan reservationen går ut.", reason=reason)
    return _("Kortet nekades. Bokningen väntar fortfarande på betalning; prova ett annat kort, eller boka med "
             "faktura, innan reservationen går ut.")


@dataclass
class PaymentResult:
    payment_id: int
    payment_intent_id: str | None
    status: str
    client_secret: str | None
    amount_ore: int


# ---------------------------------------------------------------------------------------------
# Paying: one attempt per card submission
# ---------------------------------------------------------------------------------------------


def check_payable(booking: Booking, now: datetime) -> None:
    """Raise unless this card booking can take a payment now (a lapsed hold on still-free beds can)."""
    if booking.payment_method != "card":
        raise Conflict(_("Den här bokningen betalas mot faktura, inte med kort."), code="not_card")
    if booking.status in ("confirmed", "completed") or captured_payment(booking.id) is not None:
        raise Conflict(_("Bokningen är redan betald."), code="already_paid", status_now=booking.status)
    if booking.status not in ("awaiting_payment", "expired"):
        raise Conflict(_("Bokningen är %(status)s och kan inte betalas.",
                         status=in_sentence("booking_status", booking.status)),
                       code="not_payable", status_now=booking.status)
    assert booking.expires_at is not None  # every hold, awaiting payment or expired, has an expiry  # nosec B101
    if (booking.status == "expired" or booking.expires_at <= now) and others_on_beds(booking):
        raise Conflict(_("Reservationen av bäddarna har gått ut och någon annan har bokat några av dem. Ingenting "
                         "drogs; sök igen efter lediga bäddar."), code="hold_expired")


def _begin_attempt(actor: Actor, booking_id: int, payment_method_id: str, now: datetime) -> tuple[int, str, int]:
    with unit_of_work():
        booking = locked_booking(booking_id)
        check_payable(booking, now)
        busy = db.session.scalar(select(func.count(Payment.id)).where(
            Payment.booking_id == booking_id, Payment.status.in_(("created", "processing")),
            Payment.created_at > now - IN_PROGRESS_WINDOW))
        if busy:
            raise Conflict(_("En betalning för bokningen behandlas redan. Vänta en minut och titta på bokningen "
                             "innan du försöker igen."), code="payment_in_progress")
        payment = Payment(booking_id=booking_id, amount_ore=booking.total_ore, status="created",
                          payment_method_id=payment_method_id, created_at=now, updated_at=now)
        db.session.add(payment)
        db.session.flush()
        audit.record(actor, "payment.attempt", "payment", payment.id,
                     after={"booking_id": booking_id, "amount_ore": payment.amount_ore}, now=now)
        return payment.id, payment.attempt_key, payment.amount_ore


def _record_failure(payment_id: int, status: str, message: str, intent_id: str | None, now: datetime) -> None:
    with unit_of_work():
        payment = db.session.get_one(Payment, payment_id)
        if payment.status in FINAL_STATUSES:
            return
        payment.status = status
        payment.failure_message = message[:500]
        payment.updated_at = now
        if intent_id and not payment.stripe_payment_intent_id:
            payment.stripe_payment_intent_id = intent_id
        audit.record(Actor.system(), f"payment.{status}", "payment", payment_id, after={"message": message}, now=now)


def pay_booking(actor: Actor, booking_id: int, payment_method_id, *, now: datetime | None = None) -> PaymentResult:
    """Charge the booking's total to a card PaymentMethod made by Stripe.js; confirm the booking if Stripe says paid."""
    now = now_or(now)
    booking = visible_booking(actor, booking_id)
    if booking.coordinator_id != actor.user_id:
        raise Forbidden(_coordinator_pays())
    if not isinstance(payment_method_id, str) or not PAYMENT_METHOD_ID.match(payment_method_id):
        raise ValidationFailed({"payment_method_id": [_("Ange id för en Stripe PaymentMethod (pm_...).")]})
    check_payable(booking, now)
    db.session.commit()
    try:
        customer = stripe_gateway.card_owner(payment_method_id)
    except stripe_gateway.InvalidRequestError:
        raise ValidationFailed({"payment_method_id": [_("Stripe känner inte till betalningsmetoden; ange kortet "
                                                        "igen.")]}) from None
    except stripe_gateway.StripeError:
        raise DomainError(_("Vi nådde inte kortinlösaren; ingenting drogs. Försök igen om en stund."),
                          code="stripe_unavailable", status=503) from None
    payment_id, attempt_key, amount = _begin_attempt(actor, booking_id, payment_method_id, now)
    expires_at = booking.expires_at
    try:
        intent = IntentView.of(stripe_gateway.create_intent(booking_id, payment_id, attempt_key, amount,
                                                            payment_method_id, customer))
    except stripe_gateway.CardError as exc:
        message = exc.user_message or "The card was declined."
        error: dict[str, Any] = cast(dict[str, Any], exc.json_body or {}).get("error") or {}  # stripe types it object
        intent_id = (error.get("payment_intent") or {}).get("id")
        _record_failure(payment_id, "failed", message, intent_id, now)
        raise PaymentFailed(_declined(exc.user_message), code="card_declined", decline_code=getattr(exc, "code", None),
                            expires_at=expires_at.isoformat() if expires_at else None) from None
    except stripe_gateway.InvalidRequestError as exc:
        _record_failure(payment_id, "failed", exc.user_message or str(exc), None, now)
        raise PaymentFailed(_("Stripe avvisade betalningen; ingenting drogs. Ange kortet igen eller använd ett annat "
                              "kort."), code="payment_refused") from None
    except stripe_gateway.StripeError as exc:
        # The outcome is unknown: the attempt stays open, and the webhook or reconcile settles it.
        _record_failure(payment_id, "created", f"Stripe unreachable: {exc}", None, now)
        raise DomainError(_("Vi nådde inte kortinlösaren. Om kortet belastades bekräftas bokningen automatiskt inom "
                            "några minuter; annars kan du försöka igen om en stund."),
                          code="stripe_unavailable", status=503) from None
    apply_intent(intent, now=now)
    payment = db.session.get_one(Payment, payment_id)
    db.session.commit()
    if payment.status == "failed" or intent.status == "requires_payment_method":
        raise PaymentFailed(_declined(intent.error_message), code="card_declined")
    return PaymentResult(payment_id, intent.id, intent.status, intent.client_secret, amount)


def setup_card_entry(actor: Actor, booking_id: int, *, now: datetime | None = None) -> str:
    """A SetupIntent for the pay page: Stripe.js turns the card element into a PaymentMethod with it."""
    now = now_or(now)
    booking = visible_booking(actor, booking_id)
    if booking.coordinator_id != actor.user_id:
        raise Forbidden(_coordinator_pays())
    check_payable(booking, now)
    db.session.commit()
    try:
        return stripe_gateway.create_setup_intent(booking_id)
    except stripe_gateway.StripeError:
        raise DomainError(_("Kortbetalning går inte just nu; försök igen om några minuter."),
                          code="stripe_unavailable", status=503) from None


# ---------------------------------------------------------------------------------------------
# The pay page's return: re-fetch and apply (settlement does the applying)
# ---------------------------------------------------------------------------------------------


def sync_booking(booking_id: int, *, now: datetime | None = None) -> None:
    """Re-fetch this booking's open PaymentIntents from Stripe and apply them (the pay page's return)."""
    now = now_or(now)
    intent_ids = cast(list[str], list(db.session.scalars(select(Payment.stripe_payment_intent_id).where(
        Payment.booking_id == booking_id, Payment.status.in_(OPEN_STATUSES),
        Payment.stripe_payment_intent_id.is_not(None)))))  # NULLs are filtered out
    db.session.commit()
    for intent_id in intent_ids:
        try:
            intent = fetch_intent(intent_id)
        except stripe_gateway.StripeError:
            log.warning("could not re-fetch %s", intent_id)
            continue
        apply_intent(intent, now=now)


# ---------------------------------------------------------------------------------------------
# Holds that lapse: their PaymentIntents are cancelled at Stripe
# ---------------------------------------------------------------------------------------------


def after_holds_expired(booking_ids: list[int]) -> None:
    """After expired holds commit: cancel their PaymentIntents at Stripe."""
    for booking_id in booking_ids:
        cancel_open_intents(booking_id)


def cancel_open_intents(booking_id: int, *, now: datetime | None = None) -> None:
    """Cancel this booking's PaymentIntents that have not taken money; one that just did is applied instead."""
    now = now_or(now)
    intent_ids = cast(list[str], list(db.session.scalars(select(Payment.stripe_payment_intent_id).where(
        Payment.booking_id == booking_id, Payment.status.in_(OPEN_STATUSES + ("failed",)),
        Payment.stripe_payment_intent_id.is_not(None)))))  # NULLs are filtered out
    db.session.commit()
    if not intent_ids:
        return
    for intent_id in intent_ids:
        try:
            intent = stripe_gateway.cancel_intent(intent_id)
        except stripe_gateway.StripeError:
            try:  # it may have succeeded meanwhile (a late payment) or be gone: act on what it is now
                intent = fetch_intent(intent_id)
            except stripe_gateway.StripeError:
                log.warning("could not cancel or fetch %s", intent_id)
                continue
        apply_intent(intent, now=now)
