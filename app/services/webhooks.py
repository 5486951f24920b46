"""Stripe webhook events: a trigger to re-fetch, recorded once with their effect.

An event is never trusted for its content: what it is about is fetched again from Stripe and applied
by `settlement`. Each event id is recorded once (a UNIQUE index decides between parallel deliveries);
one whose handling failed is recorded as failed, shown to admins and retried by the reconcile job.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import StripeEvent
from app.services import stripe_gateway
from app.services.base import now_or, unit_of_work
from app.services.errors import DomainError
from app.services.refunds import process_pending_refunds, refresh_refund
from app.services.settlement import apply_intent_locked
from app.services.stripe_gateway import fetch_intent

log = logging.getLogger(__name__)

TARGET_KINDS = ("payment_intent", "charge", "refund")


def _unusable(event_type: str, obj) -> str | None:
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


def _event_target(event_type: str, obj: dict) -> tuple[str | None, str | None]:
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


def handle_event(event_id: str, event_type: str, obj: dict | None, *, now: datetime | None = None) -> str:
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
    assert isinstance(obj, dict)  # _unusable refuses anything else  # nosec B101
    intent_id, refund_id = _event_target(event_type, obj)
    try:
        intent = fetch_intent(intent_id) if intent_id else None
        booking_id, refund_queued = _record_event(event_id, event_type, intent_id or refund_id, intent, refund_id,
                                                  now)
    except IntegrityError:
        db.session.rollback()
        return "duplicate"  # the same event, delivered in parallel, was recorded by the other delivery
    except (stripe_gateway.StripeError, DomainError) as exc:
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
            booking_id, refund_queued = apply_intent_locked(intent, now)
        elif refund_id:
            refresh_refund(refund_id, now)
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


def retry_failed_events(*, now: datetime | None = None) -> int:
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
