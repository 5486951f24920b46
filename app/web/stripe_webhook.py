"""Stripe webhook endpoint (outside /api/v1, CSRF-exempt, signature-checked)."""
import stripe
from flask import Blueprint, current_app, request

from app.api.common import problem
from app.extensions import csrf
from app.services import payments

bp = Blueprint("stripe", __name__, url_prefix="/stripe")
csrf.exempt(bp)

SIGNATURE_TOLERANCE_SECONDS = 300


@bp.post("/webhook")
def webhook():
    """Verify a Stripe event's signature on the raw body, then let the payments service act on it once."""
    try:
        event = stripe.Webhook.construct_event(
            request.get_data(), request.headers.get("Stripe-Signature", ""),
            current_app.config["STRIPE_WEBHOOK_SECRET"], tolerance=SIGNATURE_TOLERANCE_SECONDS)
    except (ValueError, stripe.SignatureVerificationError):
        return problem(400, "invalid_signature", "Invalid signature",
                       "The Stripe-Signature header is missing, wrong or older than 5 minutes.")
    obj = event["data"]["object"]
    outcome = payments.handle_event(event["id"], event["type"], obj.to_dict() if hasattr(obj, "to_dict") else obj)
    return {"received": True, "outcome": outcome}
