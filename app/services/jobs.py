"""The periodic jobs: `PERIODIC` lists every one the worker (`flask --app wsgi worker`) runs; the one-shot
commands (`flask holds expire`, `flask mail send`, `flask mail remind-holds`, `flask payments reconcile`, ...)
run the same functions.

Each is a plain function with the clock injected, safe with any number of workers on one PostgreSQL database.
The frequent ones take their rows locked (`FOR UPDATE SKIP LOCKED`, or a conditional UPDATE for the outbox)
and re-check every row under its lock before acting, so several workers share the work and no row is done
twice. The Stripe and ledger jobs run under a PostgreSQL advisory lock per job (`exclusively`): one worker
at a time does them, the others skip that round. SQLite serialises every writer anyway. Anything that calls
Stripe does so only after the unit of work that decided it committed.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Booking, Payment
from app.services import audit, mail, notifications, payments, payouts, refunds, settlement, stripe_gateway, webhooks
from app.services.base import Actor, now_or, unit_of_work
from app.services.inventory import expire_booking

log = logging.getLogger(__name__)
T = TypeVar("T")

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


def exclusively(name: str, job: Callable[[], T]) -> tuple[bool, T | None]:
    """Run `job` while holding the PostgreSQL advisory lock of `name`: (True, its result), or (False, None)
    at once when another process holds it (it is doing the same job right now). The lock lives on a
    connection of its own, so it is held across the job's transactions, and is released by the database
    if the process dies. SQLite: runs the job (its writers are serialised)."""
    if db.engine.dialect.name != "postgresql":
        return True, job()
    key = func.hashtext(f"sangplats.job.{name}")
    with db.engine.connect() as connection:
        got = connection.scalar(select(func.pg_try_advisory_lock(key)))
        connection.commit()
        if not got:
            return False, None
        try:
            return True, job()
        finally:
            try:
                connection.scalar(select(func.pg_advisory_unlock(key)))
                connection.commit()
            except Exception:  # the connection is broken: closing it releases the lock
                log.warning("could not release the advisory lock of %s; dropping its connection", name)
                connection.invalidate()


@dataclass
class PaymentsChecked:
    checked: int = 0
    changed: int = 0
    unreachable: int = 0


def reconcile_payments(*, now: datetime | None = None) -> PaymentsChecked:
    """Compare open payments with Stripe's PaymentIntents and repair what a missed event left behind."""
    now = now_or(now)
    result = PaymentsChecked()
    rows = db.session.execute(select(Payment.id, Payment.stripe_payment_intent_id, Payment.status).where(
        Payment.status.in_(payments.OPEN_STATUSES), Payment.stripe_payment_intent_id.is_not(None))).all()
    db.session.commit()
    for payment_id, intent_id, status in rows:
        result.checked += 1
        try:
            intent = stripe_gateway.fetch_intent(intent_id)
        except stripe_gateway.StripeError:
            result.unreachable += 1
            continue
        settlement.apply_intent(intent, now=now)  # locks the payment and its booking and re-checks both
        if db.session.get_one(Payment, payment_id).status != status:
            result.changed += 1
        db.session.commit()
    return result


@dataclass
class ReconcileReport:
    expired: int = 0
    checked: int = 0
    changed: int = 0
    unreachable: int = 0
    events_retried: int = 0
    refunds_sent: int = 0
    payouts_scheduled: int = 0
    skipped: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        return [f"holds expired: {self.expired}", f"payment intents checked: {self.checked}",
                f"payments changed: {self.changed}", f"unreachable at Stripe: {self.unreachable}",
                f"failed events handled: {self.events_retried}", f"refunds sent: {self.refunds_sent}",
                f"payouts scheduled: {self.payouts_scheduled}"] + [
                    f"skipped, another worker is running it: {name}" for name in self.skipped]


def reconcile(*, now: datetime | None = None) -> ReconcileReport:
    """Every money job in one run: expire lapsed holds, compare open payments with Stripe's PaymentIntents and
    repair what a missed event left behind, handle failed events again, send refunds, write the payout ledger.
    Each part but the first runs `exclusively`: a part another worker is running is skipped (and reported)."""
    now = now_or(now)
    report = ReconcileReport()
    report.expired = len(expire_and_cancel(now=now))
    skipped = []
    ran, checked = exclusively("reconcile_payments", lambda: reconcile_payments(now=now))
    if checked is not None:
        report.checked, report.changed, report.unreachable = checked.checked, checked.changed, checked.unreachable
    else:
        skipped.append("reconcile_payments")
    ran, events = exclusively("retry_failed_events", lambda: webhooks.retry_failed_events(now=now))
    report.events_retried = events or 0
    if not ran:
        skipped.append("retry_failed_events")
    ran, sent = exclusively("send_refunds", lambda: send_pending_refunds(now=now))
    report.refunds_sent = len(sent or [])
    if not ran:
        skipped.append("send_refunds")
    ran, scheduled = exclusively("schedule_payouts", lambda: schedule_payouts(now=now))
    report.payouts_scheduled = scheduled or 0
    if not ran:
        skipped.append("schedule_payouts")
    report.skipped = tuple(skipped)
    return report


# --- the worker's table of jobs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodicJob:
    """One job of the worker: `run(now)` does one round and returns what it did in a few words ("" for nothing);
    `every` names the setting of its interval (WORKER_TICK_SECONDS or WORKER_STRIPE_SECONDS); `exclusive` jobs
    run under their advisory lock (one worker at a time), the others share their rows between workers."""

    name: str
    run: Callable[[datetime | None], str]
    every: str
    exclusive: bool = False

    def run_once(self, *, now: datetime | None = None) -> str:
        if not self.exclusive:
            return self.run(now)
        ran, said = exclusively(self.name, lambda: self.run(now))
        return (said or "") if ran else "skipped: another worker is running it"


def _ids(verb: str, ids: list[int]) -> str:
    return f"{verb} {len(ids)}: {', '.join(map(str, ids))}" if ids else ""


def _send_mail(now: datetime | None) -> str:
    report = mail.send_pending(now)
    return str(report) if report.sent or report.retrying or report.failed or report.not_configured else ""


def _draw_due(now: datetime | None) -> str:
    """The allocation draw of every season whose `allocation_at` has passed (safe with several workers: the draw
    locks its round and each request, so a second worker changes nothing)."""
    from app.services import allocation  # the draw forms orders: imported when it runs, not at start

    reports = allocation.draw_due(now=now)
    return " ".join(line for report in reports for line in report.lines())


def _lapse_rehousing(now: datetime | None) -> str:
    """Rehousing offers past their 48 hours release their beds (rows taken FOR UPDATE SKIP LOCKED)."""
    from app.services import rehousing

    lapsed = rehousing.lapse_due(now=now)
    return f"lapsed {lapsed}" if lapsed else ""


def _remind_invoices(now: datetime | None) -> str:
    """Overdue invoices: the reminders due and the unpaid bookings the season's terms let go (each step a unique
    row, and one worker at a time runs it)."""
    from app.services import invoices

    done = invoices.remind_due(now=now)
    return " ".join(f"{verb} {len(numbers)}: {', '.join(numbers)}" for verb, numbers in done.items() if numbers)


def _reconcile_payments(now: datetime | None) -> str:
    result = reconcile_payments(now=now)
    return (f"{result.checked} checked, {result.changed} changed, {result.unreachable} unreachable"
            if result.checked else "")


def _retry_failed_events(now: datetime | None) -> str:
    done = webhooks.retry_failed_events(now=now)
    return f"{done} handled" if done else ""


def _schedule_payouts(now: datetime | None) -> str:
    created = schedule_payouts(now=now)
    return f"{created} scheduled" if created else ""


TICK, STRIPE = "WORKER_TICK_SECONDS", "WORKER_STRIPE_SECONDS"
PERIODIC: tuple[PeriodicJob, ...] = (
    # Lapsed holds and waiting-list offers; expiring one offers its beds to the next on the waiting list.
    PeriodicJob("expire_holds", lambda now: _ids("expired", expire_and_cancel(now=now)), TICK),
    PeriodicJob("remind_holds", lambda now: _ids("reminded", remind_expiring_holds(now=now)), TICK),
    PeriodicJob("send_mail", _send_mail, TICK),
    PeriodicJob("allocation_draw", _draw_due, TICK),
    PeriodicJob("lapse_rehousing", _lapse_rehousing, TICK),
    PeriodicJob("reconcile_payments", _reconcile_payments, STRIPE, exclusive=True),
    PeriodicJob("retry_failed_events", _retry_failed_events, STRIPE, exclusive=True),
    PeriodicJob("send_refunds", lambda now: _ids("sent", send_pending_refunds(now=now)), STRIPE, exclusive=True),
    PeriodicJob("schedule_payouts", _schedule_payouts, STRIPE, exclusive=True),
    PeriodicJob("remind_invoices", _remind_invoices, STRIPE, exclusive=True),
)
