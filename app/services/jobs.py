"""The periodic jobs (run by `flask holds expire`, `flask payments reconcile`, `flask mail remind-holds`, cron).

Each is a plain function with the clock injected. Each takes its rows locked (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, so that two workers never do the same row twice) and re-checks every row under its lock
before acting; anything that calls Stripe does so only after the unit of work that decided it committed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, Booking, Payment
from app.services import audit, notifications, payments, payouts, refunds, settlement, stripe_gateway, webhooks
from app.services.base import Actor, now_or, unit_of_work
from app.services.inventory import expire_booking

HOLD_REMINDER_MINUTES = 5


def expire_holds(*, now: datetime | None = None) -> list[int]:
    """Expire every unpaid hold and unaccepted waiting-list offer past its time; return the booking ids.

    Expiring emits `booking.expired`, on which the waiting list offers the freed beds to the next entry."""
    now = now_or(now)
    with unit_of_work():
        # Locked and re-checked: a hold being paid right now is skipped, and one paid meanwhile no longer matches.
        stale = db.session.scalars(select(Booking).where(
            Booking.status == "awaiting_payment", Booking.expires_at <= now).order_by(Booking.id)
            .with_for_update(skip_locked=True).execution_options(populate_existing=True)).all()
        for booking in stale:
            expire_booking(booking, now, Actor.system())
        ids = [b.id for b in stale]
    return ids


def expire_and_cancel(*, now: datetime | None = None) -> list[int]:
    """Expire unpaid holds past their time, then (committed) cancel their PaymentIntents at Stripe."""
    ids = expire_holds(now=now)
    payments.after_holds_expired(ids)
    return ids


def send_pending_refunds(*, now: datetime | None = None) -> list[int]:
    """Send pending refunds, retry failed ones and any stuck mid-send (each claimed under its booking's lock)."""
    return refunds.process_pending_refunds(now=now)


def schedule_payouts(*, now: datetime | None = None) -> int:
    """Write the payout ledger up to now (stays 24 hours under way become payable)."""
    return payouts.sync_payouts(now=now)


def remind_expiring_holds(*, now: datetime | None = None) -> list[int]:
    """Queue one reminder per hold or offer that expires within five minutes; return the booking ids."""
    now = now_or(now)
    reminded = []
    with unit_of_work():
        holds = db.session.scalars(select(Booking).where(
            Booking.status == "awaiting_payment", Booking.expires_at > now,
            Booking.expires_at <= now + timedelta(minutes=HOLD_REMINDER_MINUTES)).order_by(Booking.id)
            .with_for_update(skip_locked=True).execution_options(populate_existing=True)).all()
        for booking in holds:
            # The audit log records that a reminder went out, so each hold gets only one.
            if db.session.scalar(select(AuditEntry.id).where(
                    AuditEntry.action == notifications.HOLD_REMINDED, AuditEntry.object_type == "booking",
                    AuditEntry.object_id == str(booking.id)).limit(1)) is not None:
                continue
            if not notifications.queue_hold_reminder(booking, now=now):
                continue
            audit.record(Actor.system(), notifications.HOLD_REMINDED, "booking", booking.id,
                         after={"expires_at": booking.expires_at}, now=now)
            reminded.append(booking.id)
    return reminded


@dataclass
class ReconcileReport:
    expired: int = 0
    checked: int = 0
    changed: int = 0
    unreachable: int = 0
    events_retried: int = 0
    refunds_sent: int = 0
    payouts_scheduled: int = 0

    def lines(self) -> list[str]:
        return [f"holds expired: {self.expired}", f"payment intents checked: {self.checked}",
                f"payments changed: {self.changed}", f"unreachable at Stripe: {self.unreachable}",
                f"failed events handled: {self.events_retried}", f"refunds sent: {self.refunds_sent}",
                f"payouts scheduled: {self.payouts_scheduled}"]


def reconcile(*, now: datetime | None = None) -> ReconcileReport:
    """Every money job in one run: expire lapsed holds, compare open payments with Stripe's PaymentIntents and
    repair what a missed event left behind, handle failed events again, send refunds, write the payout ledger."""
    now = now_or(now)
    report = ReconcileReport()
    report.expired = len(expire_and_cancel(now=now))
    rows = db.session.execute(select(Payment.id, Payment.stripe_payment_intent_id, Payment.status).where(
        Payment.status.in_(payments.OPEN_STATUSES), Payment.stripe_payment_intent_id.is_not(None))).all()
    db.session.commit()
    for payment_id, intent_id, status in rows:
        report.checked += 1
        try:
            intent = stripe_gateway.fetch_intent(intent_id)
        except stripe_gateway.StripeError:
            report.unreachable += 1
            continue
        settlement.apply_intent(intent, now=now)  # locks the payment and its booking and re-checks both
        if db.session.get_one(Payment, payment_id).status != status:
            report.changed += 1
        db.session.commit()
    report.events_retried = webhooks.retry_failed_events(now=now)
    report.refunds_sent = len(send_pending_refunds(now=now))
    report.payouts_scheduled = schedule_payouts(now=now)
    return report
