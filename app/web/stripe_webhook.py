"""Stripe webhook endpoint (outside /api/v1, CSRF-exempt, signature-checked)."""
import hashlib

import stripe
from flask import Blueprint, current_app, request

from app.extensions import csrf
from app.http_problems import problem
from app.services import webhooks

bp = Blueprint("stripe", __name__, url_prefix="/stripe")
csrf.exempt(bp)

SIGNATURE_TOLERANCE_SECONDS = 300


@bp.post("/webhook")
def webhook():
    """Verify a Stripe event's signature on the raw body, then let the payments service act on it once."""
    if _dated_ahead(request.headers.get("Stripe-Signature", "")):
        return problem(400, "invalid_signature", "Invalid signature",
                       "The Stripe-Signature header is dated more than 5 minutes ahead.")
    try:
        event = stripe.Webhook.construct_event(
            request.get_data(), request.headers.get("Stripe-Signature", ""),
            current_app.config["STRIPE_WEBHOOK_SECRET"], tolerance=SIGNATURE_TOLERANCE_SECONDS)
    except (ValueError, stripe.SignatureVerificationError):
        return problem(400, "invalid_signature", "Invalid signature",
                       "The Stripe-Signature header is missing, wrong or older than 5 minutes.")
    event = event.to_dict() if hasattr(event, "to_dict") else dict(event)
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        # Signed by Stripe but without a usable id: recorded under one derived from its body (a resend is the same).
        event_id = "malformed_" + hashlib.sha256(request.get_data()).hexdigest()
    raw_type = event.get("type")
    event_type = raw_type if isinstance(raw_type, str) else ""
    outcome = webhooks.handle_event(event_id, event_type, obj if isinstance(obj, dict) else None)
    return {"received": True, "outcome": outcome}


def _dated_ahead(header: str) -> bool:
    """A signature timestamp more than the tolerance in the future is refused like a stale one."""
    from app.services.base import now_or
    for part in header.split(","):
        key, _sep, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            return int(value) > now_or(None).timestamp() + SIGNATURE_TOLERANCE_SECONDS
    return False
