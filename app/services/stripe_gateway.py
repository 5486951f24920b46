"""The gateway to Stripe: the one module that talks to the Stripe SDK.

Every call goes through `_sdk()`, which configures the SDK from the app's config (the one place that
does), and answers in plain values (`IntentView`, dicts). The rest of the payment services never
import `stripe`: they catch the SDK's errors under the names handed on here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import stripe
from flask import current_app
from stripe import CardError, InvalidRequestError, StripeError

from app.i18n import current_locale

CURRENCY = "sek"

__all__ = [
    "CURRENCY", "CardError", "IntentView", "InvalidRequestError", "StripeError", "cancel_intent", "card_owner",
    "configure_stripe", "create_intent", "create_refund", "create_setup_intent", "fetch_intent", "fetch_refund",
    "plain",
]


def configure_stripe() -> None:
    stripe.api_key = current_app.config["STRIPE_SECRET_KEY"]
    stripe.api_base = current_app.config.get("STRIPE_API_BASE") or "https://api.stripe.com"
    stripe.max_network_retries = 1


def _sdk() -> Any:
    """The Stripe SDK, configured for this app (key, API base, retries)."""
    configure_stripe()
    return stripe


@dataclass(frozen=True)
class IntentView:
    """What Stripe says about a PaymentIntent, as plain values."""

    id: str
    status: str
    amount: int
    currency: str
    metadata: dict = field(default_factory=dict)
    client_secret: str | None = None
    error_message: str | None = None

    @classmethod
    def of(cls, intent: Any) -> IntentView:
        intent = plain(intent)
        error = intent.get("last_payment_error") or None
        metadata = intent.get("metadata") or {}
        return cls(id=intent["id"], status=intent["status"], amount=int(intent["amount"]),
                   currency=str(intent["currency"]).lower(), metadata={k: str(v) for k, v in metadata.items()},
                   client_secret=intent.get("client_secret"),
                   error_message=(error.get("message") if error else None))


def plain(obj: Any) -> dict:
    """A Stripe SDK object (not a dict since v15) as a plain dict."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def fetch_intent(intent_id: str) -> IntentView:
    return IntentView.of(_sdk().PaymentIntent.retrieve(intent_id))


def card_owner(payment_method_id: str) -> str | None:
    """The Customer a saved card belongs to (Stripe wants the two together), or None."""
    return plain(_sdk().PaymentMethod.retrieve(payment_method_id)).get("customer")


def create_intent(booking_id: int, payment_id: int, attempt_key: str, amount_ore: int, payment_method_id: str,
                  customer: str | None = None):
    """Create and confirm a PaymentIntent for one attempt (its attempt key is the idempotency key)."""
    params: dict[str, Any] = {"customer": customer} if customer else {}
    return _sdk().PaymentIntent.create(
        amount=amount_ore, currency=CURRENCY, payment_method=payment_method_id, confirm=True,
        payment_method_types=["card"],
        metadata={"booking_id": str(booking_id), "payment_id": str(payment_id), "attempt_key": attempt_key},
        idempotency_key=f"sangplats-payment-{attempt_key}",
        headers={"Accept-Language": current_locale()}, **params)  # Stripe words a decline in the user's language


def cancel_intent(intent_id: str) -> IntentView:
    return IntentView.of(_sdk().PaymentIntent.cancel(intent_id))


def create_setup_intent(booking_id: int | None = None, *, order_id: int | None = None) -> str:
    """A SetupIntent for a pay page (one booking's, or an order's); returns its client secret.

    An order's card pays several PaymentIntents, and Stripe lets a PaymentMethod be used more than once only
    when it belongs to a Customer: the order's SetupIntent makes one, so the card is saved to it."""
    if order_id is not None:
        customer = _sdk().Customer.create(metadata={"order_id": str(order_id)})
        intent = _sdk().SetupIntent.create(usage="on_session", payment_method_types=["card"], customer=customer.id,
                                           metadata={"order_id": str(order_id)})
    else:
        intent = _sdk().SetupIntent.create(usage="on_session", payment_method_types=["card"],
                                           metadata={"booking_id": str(booking_id)})
    return intent.client_secret


def create_refund(intent_id: str, amount_ore: int, idempotency_key: str) -> dict:
    return plain(_sdk().Refund.create(payment_intent=intent_id, amount=amount_ore, idempotency_key=idempotency_key))


def fetch_refund(stripe_refund_id: str) -> dict:
    return plain(_sdk().Refund.retrieve(stripe_refund_id))
