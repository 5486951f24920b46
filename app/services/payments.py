"""Card payments through Stripe: attempts, confirmation, webhooks, reconciliation and refunds.

Stripe is never called inside unit_of_work(). Each attempt row is committed first (its
`attempt_key` is the Stripe idempotency key and rides along in the PaymentIntent's metadata),
then Stripe is called, then what Stripe says is applied in a new unit of work by
`_apply_intent`, the one place where money turns a hold into a confirmed booking. The API
route, the pay page's return, the webhook and `reconcile` all go through it, so any number of
triggers in any order give one confirmation.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Optional

import stripe
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.i18n import booking_status, current_locale, kr
from app.models import BedNight, Booking, Payment, Refund, StripeEvent
from app.services import audit, events
from app.services.access import locked_booking, visible_booking
from app.services.availability import taken_bed_nights
from app.services.base import Actor, now_or, unit_of_work
from app.services.errors import (
    Conflict, DomainError, Forbidden, NotFound, PaymentFailed, ValidationFailed,
)
from app.services.ledger import (
    REFUND_REASONS, add_refund, captured_payment, left_to_send_ore, refundable_ore,
)

log = logging.getLogger(__name__)

CURRENCY = "sek"
OPEN_STATUSES = ("created", "requires_payment_method", "requires_confirmation", "requires_action", "processing",
                 "requires_capture")
FINAL_STATUSES = ("succeeded", "canceled")
MAX_REFUND_ATTEMPTS = 10
IN_PROGRESS_WINDOW = timedelta(seconds=60)
STALE_SENDING = timedelta(minutes=10)
PAYMENT_METHOD_ID = re.compile(r"^pm_[A-Za-z0-9_]{1,200}$")

def _coordinator_pays() -> str:
    return _("Bara bokningens samordnare betalar för den.")


def _declined(reason: Optional[str]) -> str:
    """Stripe's reason when it gives one, and what the coordinator can do."""
    if reason:
        return _("Kortet nekades: %(reason)s Bokningen väntar fortfarande på betalning; prova ett annat kort, eller "
                 "boka med faktura, innan reservationen går ut.", reason=reason)
    return _("Kortet nekades. Bokningen väntar fortfarande på betalning; prova ett annat kort, eller boka med "
             "faktura, innan reservationen går ut.")


def configure_stripe() -> None:
    stripe.api_key = current_app.config["STRIPE_SECRET_KEY"]
    stripe.api_base = current_app.config.get("STRIPE_API_BASE") or "https://api.stripe.com"
    stripe.max_network_retries = 1


# ---------------------------------------------------------------------------------------------
# What Stripe says about a PaymentIntent, as plain values
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntentView:
    id: str
    status: str
    amount: int
    currency: str
    metadata: dict = field(default_factory=dict)
    client_secret: Optional[str] = None
    error_message: Optional[str] = None

    @classmethod
    def of(cls, intent: Any) -> "IntentView":
        intent = _plain(intent)
        error = intent.get("last_payment_error") or None
        metadata = intent.get("metadata") or {}
        return cls(id=intent["id"], status=intent["status"], amount=int(intent["amount"]),
                   currency=str(intent["currency"]).lower(), metadata={k: str(v) for k, v in metadata.items()},
                   client_secret=intent.get("client_secret"),
                   error_message=(error.get("message") if error else None))


def _plain(obj: Any) -> dict:
    """A Stripe SDK object (not a dict since v15) as a plain dict."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


@dataclass
class PaymentResult:
    payment_id: int
    payment_intent_id: Optional[str]
    status: str
    client_secret: Optional[str]
    amount_ore: int


def fetch_intent(intent_id: str) -> IntentView:
    configure_stripe()
    return IntentView.of(stripe.PaymentIntent.retrieve(intent_id))


# ---------------------------------------------------------------------------------------------
# Paying: one attempt per card submission
# ---------------------------------------------------------------------------------------------


def _others_on_beds(booking: Booking) -> list:
    """Bed-nights of this booking's lines now occupied by anything else."""
    bed_ids = sorted({line.bed_id for line in booking.lines})
    own = {(line.bed_id, line.night) for line in booking.lines if line.state in ("held", "booked")}
    return [pair for pair in taken_bed_nights(bed_ids, booking.check_in, booking.check_out) if pair not in own]


def check_payable(booking: Booking, now: datetime) -> None:
    """Raise unless this card booking can take a payment now (a lapsed hold on still-free beds can)."""
    if booking.payment_method != "card":
        raise Conflict(_("Den här bokningen betalas mot faktura, inte med kort."), code="not_card")
    if booking.status in ("confirmed", "completed") or captured_payment(booking.id) is not None:
        raise Conflict(_("Bokningen är redan betald."), code="already_paid", status_now=booking.status)
    if booking.status not in ("awaiting_payment", "expired"):
        raise Conflict(_("Bokningen är %(status)s och kan inte betalas.", status=booking_status(booking.status)),
                       code="not_payable", status_now=booking.status)
    if (booking.status == "expired" or booking.expires_at <= now) and _others_on_beds(booking):
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


def _card_owner(payment_method_id: str) -> Optional[str]:
    """The Customer a saved card belongs to (Stripe wants the two together), or None."""
    configure_stripe()
    return _plain(stripe.PaymentMethod.retrieve(payment_method_id)).get("customer")


def _create_intent(booking_id: int, payment_id: int, attempt_key: str, amount_ore: int, payment_method_id: str,
                   customer: Optional[str] = None):
    configure_stripe()
    params: dict[str, Any] = {"customer": customer} if customer else {}
    return stripe.PaymentIntent.create(
        amount=amount_ore, currency=CURRENCY, payment_method=payment_method_id, confirm=True,
        payment_method_types=["card"],
        metadata={"booking_id": str(booking_id), "payment_id": str(payment_id), "attempt_key": attempt_key},
        idempotency_key=f"sangplats-payment-{attempt_key}",
        headers={"Accept-Language": current_locale()}, **params)  # Stripe words a decline in the user's language


def _record_failure(payment_id: int, status: str, message: str, intent_id: Optional[str], now: datetime) -> None:
    with unit_of_work():
        payment = db.session.get(Payment, payment_id)
        if payment.status in FINAL_STATUSES:
            return
        payment.status = status
        payment.failure_message = message[:500]
        payment.updated_at = now
        if intent_id and not payment.stripe_payment_intent_id:
            payment.stripe_payment_intent_id = intent_id
        audit.record(Actor.system(), f"payment.{status}", "payment", payment_id, after={"message": message}, now=now)


def pay_booking(actor: Actor, booking_id: int, payment_method_id, *, now: Optional[datetime] = None) -> PaymentResult:
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
        customer = _card_owner(payment_method_id)
    except stripe.InvalidRequestError:
        raise ValidationFailed({"payment_method_id": [_("Stripe känner inte till betalningsmetoden; ange kortet "
                                                        "igen.")]}) from None
    except stripe.StripeError:
        raise DomainError(_("Vi nådde inte kortinlösaren; ingenting drogs. Försök igen om en stund."),
                          code="stripe_unavailable", status=503) from None
    payment_id, attempt_key, amount = _begin_attempt(actor, booking_id, payment_method_id, now)
    expires_at = booking.expires_at
    try:
        intent = IntentView.of(_create_intent(booking_id, payment_id, attempt_key, amount, payment_method_id,
                                              customer))
    except stripe.CardError as exc:
        message = exc.user_message or "The card was declined."
        error = (exc.json_body or {}).get("error") or {}
        intent_id = (error.get("payment_intent") or {}).get("id")
        _record_failure(payment_id, "failed", message, intent_id, now)
        raise PaymentFailed(_declined(exc.user_message), code="card_declined", decline_code=getattr(exc, "code", None),
                            expires_at=expires_at.isoformat() if expires_at else None) from None
    except stripe.InvalidRequestError as exc:
        _record_failure(payment_id, "failed", exc.user_message or str(exc), None, now)
        raise PaymentFailed(_("Stripe avvisade betalningen; ingenting drogs. Ange kortet igen eller använd ett annat "
                              "kort."), code="payment_refused") from None
    except stripe.StripeError as exc:
        # The outcome is unknown: the attempt stays open, and the webhook or reconcile settles it.
        _record_failure(payment_id, "created", f"Stripe unreachable: {exc}", None, now)
        raise DomainError(_("Vi nådde inte kortinlösaren. Om kortet belastades bekräftas bokningen automatiskt inom "
                            "några minuter; annars kan du försöka igen om en stund."),
                          code="stripe_unavailable", status=503) from None
    apply_intent(intent, now=now)
    payment = db.session.get(Payment, payment_id)
    db.session.commit()
    if payment.status == "failed" or intent.status == "requires_payment_method":
        raise PaymentFailed(_declined(intent.error_message), code="card_declined")
    return PaymentResult(payment_id, intent.id, intent.status, intent.client_secret, amount)


def setup_card_entry(actor: Actor, booking_id: int, *, now: Optional[datetime] = None) -> str:
    """A SetupIntent for the pay page: Stripe.js turns the card element into a PaymentMethod with it."""
    now = now_or(now)
    booking = visible_booking(actor, booking_id)
    if booking.coordinator_id != actor.user_id:
        raise Forbidden(_coordinator_pays())
    check_payable(booking, now)
    db.session.commit()
    configure_stripe()
    try:
        intent = stripe.SetupIntent.create(usage="on_session", payment_method_types=["card"],
                                           metadata={"booking_id": str(booking_id)})
    except stripe.StripeError:
        raise DomainError(_("Kortbetalning går inte just nu; försök igen om några minuter."),
                          code="stripe_unavailable", status=503) from None
    return intent.client_secret


# ---------------------------------------------------------------------------------------------
# Applying what Stripe says: the one way a payment confirms a booking
# ---------------------------------------------------------------------------------------------


def _payment_for(intent: IntentView) -> Optional[Payment]:
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
    booking.note = REFUND_REASONS[reason]
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


def _retake(booking: Booking, payment: Payment, now: datetime) -> bool:
    """Take a lapsed hold's bed-nights back for a late payment, if nobody else has them."""
    if _others_on_beds(booking):
        return False
    try:
        with db.session.begin_nested():
            db.session.execute(update(BedNight).where(BedNight.booking_id == booking.id,
                                                      BedNight.state.in_(("held", "released")))
                               .values(state="booked", released_at=None))
    except IntegrityError:  # someone took a bed-night between our look and our write
        return False
    booking.status = "confirmed"
    booking.confirmed_at = now
    booking.cancelled_at = None
    audit.record(Actor.system(), "booking.confirmed_late", "booking", booking.id,
                 after={"payment_id": payment.id, "payment_intent_id": payment.stripe_payment_intent_id}, now=now)
    _announce(booking, now)
    return True


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
        if _retake(booking, payment, now):
            return False
        booking.refund_ore = payment.amount_ore
        _queue_full_refund(booking, payment, "late_payment_beds_taken", now)
        return True
    _queue_full_refund(booking, payment, "payment_after_cancellation", now)
    return True


def _apply_intent(intent: IntentView, now: datetime) -> tuple[Optional[int], bool]:
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


def apply_intent(intent: IntentView, *, now: Optional[datetime] = None) -> Optional[int]:
    """Apply a PaymentIntent's current state (idempotent); send any refund it caused after commit."""
    now = now_or(now)
    with unit_of_work():
        booking_id, refund_queued = _apply_intent(intent, now)
    if refund_queued:
        process_pending_refunds(booking_id, now=now)
    return booking_id


def sync_booking(booking_id: int, *, now: Optional[datetime] = None) -> None:
    """Re-fetch this booking's open PaymentIntents from Stripe and apply them (the pay page's return)."""
    now = now_or(now)
    intent_ids = list(db.session.scalars(select(Payment.stripe_payment_intent_id).where(
        Payment.booking_id == booking_id, Payment.status.in_(OPEN_STATUSES),
        Payment.stripe_payment_intent_id.is_not(None))))
    db.session.commit()
    for intent_id in intent_ids:
        try:
            intent = fetch_intent(intent_id)
        except stripe.StripeError:
            log.warning("could not re-fetch %s", intent_id)
            continue
        apply_intent(intent, now=now)


# ---------------------------------------------------------------------------------------------
# Webhook events: a trigger to re-fetch, recorded once with their effect
# ---------------------------------------------------------------------------------------------


TARGET_KINDS = ("payment_intent", "charge", "refund")


def _unusable(event_type: str, obj) -> Optional[str]:
    """Why a signed event cannot be acted on (it is then recorded as failed, not lost), or None."""
    if not isinstance(obj, dict):
        return "no data.object"
    kind = obj.get("object")
    if kind not in TARGET_KINDS:
        return None if isinstance(kind, str) else "data.object has no object type"
    target = obj.get("payment_intent") if kind == "charge" else obj.get("id")
    if isinstance(target, dict):
        target = target.get("id")
    if not isinstance(target, str) or not target or len(target) > 255:
        return f"{kind} without a usable id"
    return None


def _event_target(event_type: str, obj: dict) -> tuple[Optional[str], Optional[str]]:
    """(payment intent id, refund id) an event is about."""
    kind = obj.get("object")
    if kind == "payment_intent":
        return obj.get("id"), None
    if kind == "charge":
        intent = obj.get("payment_intent")
        return (intent.get("id") if isinstance(intent, dict) else intent), None
    if kind == "refund":
        return None, obj.get("id")
    return None, None


def _refresh_refund(stripe_refund_id: str, now: datetime) -> None:
    """A refund Stripe later reports failed goes back to `failed`, to be retried and shown to admins."""
    configure_stripe()
    remote = _plain(stripe.Refund.retrieve(stripe_refund_id))
    if remote.get("status") not in ("failed", "canceled"):
        return
    refund = db.session.scalars(select(Refund).where(Refund.stripe_refund_id == stripe_refund_id)
                                .execution_options(populate_existing=True)).one_or_none()
    if refund is not None and refund.status == "succeeded":
        refund.status = "failed"
        refund.stripe_refund_id = None
        refund.last_error = f"Stripe reports the refund {remote.get('status')}: {remote.get('failure_reason')}"
        refund.updated_at = now


def handle_event(event_id: str, event_type: str, obj: Optional[dict], *, now: Optional[datetime] = None) -> str:
    """Act on a verified Stripe event once: re-fetch what it is about and apply its current state.

    Returns `processed`, `duplicate`, `ignored` or `failed` (recorded for admins and retried by reconcile).
    """
    now = now_or(now)
    seen = db.session.scalar(select(StripeEvent.status).where(StripeEvent.event_id == event_id))
    db.session.commit()
    if seen == "processed":
        return "duplicate"
    event_type = event_type[:100]
    problem = _unusable(event_type, obj)
    if problem:
        _record_event_failure(event_id, event_type, None, f"unusable event: {problem}", now)
        return "failed"
    intent_id, refund_id = _event_target(event_type, obj)
    try:
        intent = fetch_intent(intent_id) if intent_id else None
        booking_id, refund_queued = _record_event(event_id, event_type, intent_id or refund_id, intent, refund_id,
                                                  now)
    except IntegrityError:
        db.session.rollback()
        return "duplicate"  # the same event, delivered in parallel, was recorded by the other delivery
    except (stripe.StripeError, DomainError) as exc:
        db.session.rollback()
        _record_event_failure(event_id, event_type, intent_id or refund_id, str(exc), now)
        return "failed"
    if booking_id is None and refund_queued is None:
        return "duplicate"
    if refund_queued:
        process_pending_refunds(booking_id, now=now)
    return "processed" if intent_id or refund_id else "ignored"


def _record_event(event_id, event_type, object_id, intent, refund_id, now):
    with unit_of_work():
        row = db.session.scalars(select(StripeEvent).where(StripeEvent.event_id == event_id)
                                 .execution_options(populate_existing=True)).one_or_none()
        if row is not None and row.status == "processed":
            return None, None
        if row is None:
            row = StripeEvent(event_id=event_id, type=event_type[:100], object_id=object_id, received_at=now,
                              attempts=1)
            db.session.add(row)
            db.session.flush()  # the UNIQUE event id decides between parallel deliveries here
        else:
            row.attempts += 1
        row.status, row.error, row.processed_at = "processed", None, now
        booking_id, refund_queued = (None, False)
        if intent is not None:
            booking_id, refund_queued = _apply_intent(intent, now)
        elif refund_id:
            _refresh_refund(refund_id, now)
    return booking_id, refund_queued


def _record_event_failure(event_id, event_type, object_id, error, now) -> None:
    try:
        with unit_of_work():
            row = db.session.scalar(select(StripeEvent).where(StripeEvent.event_id == event_id))
            if row is None:
                db.session.add(StripeEvent(event_id=event_id, type=event_type[:100], object_id=object_id,
                                           received_at=now, status="failed", attempts=1, error=error[:500]))
            elif row.status == "failed":
                row.attempts += 1
                row.error = error[:500]
    except IntegrityError:
        db.session.rollback()
    log.warning("stripe event %s failed: %s", event_id, error)


def retry_failed_events(*, now: Optional[datetime] = None) -> int:
    """Handle again the events whose first handling failed; returns how many now succeeded."""
    now = now_or(now)
    rows = db.session.execute(select(StripeEvent.event_id, StripeEvent.type, StripeEvent.object_id).where(
        StripeEvent.status == "failed").order_by(StripeEvent.id)).all()
    db.session.commit()
    done = 0
    for event_id, event_type, object_id in rows:
        kind = "refund" if (object_id or "").startswith("re_") else "payment_intent"
        if handle_event(event_id, event_type, {"object": kind, "id": object_id}, now=now) == "processed":
            done += 1
    return done


# ---------------------------------------------------------------------------------------------
# Holds that lapse, and reconciliation
# ---------------------------------------------------------------------------------------------


def after_holds_expired(booking_ids: list[int]) -> None:
    """After expired holds commit: cancel their PaymentIntents at Stripe."""
    for booking_id in booking_ids:
        cancel_open_intents(booking_id)


def cancel_open_intents(booking_id: int, *, now: Optional[datetime] = None) -> None:
    """Cancel this booking's PaymentIntents that have not taken money; one that just did is applied instead."""
    now = now_or(now)
    intent_ids = list(db.session.scalars(select(Payment.stripe_payment_intent_id).where(
        Payment.booking_id == booking_id, Payment.status.in_(OPEN_STATUSES + ("failed",)),
        Payment.stripe_payment_intent_id.is_not(None))))
    db.session.commit()
    if not intent_ids:
        return
    configure_stripe()
    for intent_id in intent_ids:
        try:
            intent = IntentView.of(stripe.PaymentIntent.cancel(intent_id))
        except stripe.StripeError:
            try:  # it may have succeeded meanwhile (a late payment) or be gone: act on what it is now
                intent = fetch_intent(intent_id)
            except stripe.StripeError:
                log.warning("could not cancel or fetch %s", intent_id)
                continue
        apply_intent(intent, now=now)


# ---------------------------------------------------------------------------------------------
# Refunds: the refunds table is the outbox; amounts are checked here, never left to Stripe
# ---------------------------------------------------------------------------------------------


def request_refund(actor: Actor, booking_id: int, amount_ore, *, now: Optional[datetime] = None) -> Refund:
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
        refund = add_refund(booking_id, payment.id, amount_ore, "admin", now)
        db.session.flush()
        audit.record(actor, "refund.requested", "refund", refund.id,
                     after={"booking_id": booking_id, "amount_ore": amount_ore}, now=now)
        refund_id = refund.id
    process_pending_refunds(booking_id, now=now)
    return db.session.get(Refund, refund_id)


def _claim_refund(refund_id: int, now: datetime) -> Optional[tuple[str, int, str]]:
    """Check the amount against what is left and mark the refund `sending` (one sender at a time)."""
    with unit_of_work():
        refund = db.session.get(Refund, refund_id)
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


def send_refund(refund_id: int, *, now: Optional[datetime] = None) -> bool:
    """Send one refund to Stripe if it may go; True when Stripe accepted it."""
    now = now_or(now)
    claim = _claim_refund(refund_id, now)
    if claim is None:
        return False
    intent_id, amount, key = claim
    configure_stripe()
    try:
        result = _plain(stripe.Refund.create(payment_intent=intent_id, amount=amount, idempotency_key=key))
        error = None if result.get("status") not in ("failed", "canceled") else f"Stripe: {result.get('status')}"
    except stripe.StripeError as exc:
        result, error = None, str(exc.user_message or exc)[:500]
    with unit_of_work():
        refund = db.session.get(Refund, refund_id)
        refund.updated_at = now
        if error is None:
            refund.status, refund.stripe_refund_id, refund.last_error = "succeeded", result["id"], None
        else:
            refund.status, refund.last_error = "failed", error
        audit.record(Actor.system(), f"refund.{refund.status}", "refund", refund_id,
                     after={"amount_ore": amount, "error": error}, now=now)
    return error is None


def process_pending_refunds(booking_id: Optional[int] = None, *, now: Optional[datetime] = None) -> list[int]:
    """Send pending refunds, retry failed ones (up to a limit) and any stuck mid-send; returns those accepted."""
    now = now_or(now)
    query = select(Refund.id).where(Refund.attempts < MAX_REFUND_ATTEMPTS, Refund.status.in_(
        ("pending", "failed", "sending"))).order_by(Refund.id)
    if booking_id is not None:
        query = query.where(Refund.booking_id == booking_id)
    ids = list(db.session.scalars(query))
    db.session.commit()
    return [refund_id for refund_id in ids if send_refund(refund_id, now=now)]


def retry_refund(actor: Actor, refund_id: int, *, now: Optional[datetime] = None) -> Refund:
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
    return db.session.get(Refund, refund_id)


def after_cancellation(booking_id: int) -> None:
    """After a cancellation commits: pay back what the contract says."""
    process_pending_refunds(booking_id)
