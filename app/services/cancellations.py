"""Cancellations: a guest under the contract's terms, a host in breach (strike, flag, full refund).

The money comes from the ledger; the refund rows it writes are sent to Stripe after commit.
"""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import update

from app.extensions import db
from app.labels import in_sentence
from app.models import BedNight, Booking
from app.services import audit, events, refunds
from app.services.access import locked_booking, visible_booking
from app.services.base import Actor, local_date, now_or, unit_of_work
from app.services.errors import Conflict, Forbidden, ValidationFailed
from app.services.flags import add_system_flag
from app.services.inventory import CANCELLABLE
from app.services.ledger import add_refund, guest_cancellation_ore, host_cancellation_ore, latest_captured_payment
from app.services.offers import is_offer
from app.services.text import clean_text
from app.services.vetting import add_strike


def _queue_refund(booking: Booking, amount_ore: int, reason: str, now: datetime) -> None:
    """Record a card refund to be sent to Stripe after commit (the refunds table is its outbox)."""
    if booking.payment_method != "card" or amount_ore <= 0:
        return
    payment = latest_captured_payment(booking.id)
    add_refund(booking.id, payment.id if payment else None, amount_ore, reason, now)


def cancel_by_guest(actor: Actor, booking_id: int, *, now: datetime | None = None) -> Booking:
    """The coordinator cancels under the contract's terms; the bed-nights are freed."""
    now = now_or(now)
    booking = visible_booking(actor, booking_id)
    if booking.coordinator_id != actor.user_id:
        raise Forbidden(_("Bara bokningens samordnare kan avboka den på det här sättet."))
    with unit_of_work():
        booking = locked_booking(booking_id)
        if booking.status not in CANCELLABLE:
            raise Conflict(_("Bokningen är %(status)s och kan inte avbokas.",
                             status=in_sentence("booking_status", booking.status)),
                           code="not_cancellable", status_now=booking.status)
        refund, credit = guest_cancellation_ore(booking, local_date(now))
        _queue_refund(booking, refund, "guest_cancellation", now)
        before = booking.status
        booking.status = "cancelled_by_guest"
        booking.cancelled_at = now
        booking.refund_ore = refund
        booking.invoice_credited_ore = credit
        db.session.execute(update(BedNight).where(
            BedNight.booking_id == booking.id, BedNight.state.in_(("held", "booked")))
            .values(state="released", released_at=now))
        audit.record(actor, "booking.cancelled_by_guest", "booking", booking.id, before={"status": before},
                     after={"status": booking.status, "refund_ore": refund, "invoice_credited_ore": credit},
                     now=now)
        events.emit(events.BOOKING_CANCELLED_BY_GUEST, booking=booking, now=now)
    refunds.after_cancellation(booking_id)
    return booking


def cancel_by_host(actor: Actor, booking_id: int, reason: str, *, now: datetime | None = None) -> Booking:
    """A host breaks the contract: the money received is refunded in full and an unpaid invoice credited in full
    (host_cancellation_ore), the beds stay locked for the stay, a strike and a flag."""
    now = now_or(now)
    booking = visible_booking(actor, booking_id)
    if booking.host_id != actor.user_id:
        raise Forbidden(_("Bara bokningens värd kan avboka den som värd."))
    reason = (reason or "").strip()
    if len(reason) > 1000:
        raise ValidationFailed({"reason": [_("Högst %(max)s tecken.", max=1000)]})
    clean_text(reason, "reason", multiline=True)
    with unit_of_work():
        booking = locked_booking(booking_id)
        if booking.status not in CANCELLABLE:
            raise Conflict(_("Bokningen är %(status)s och kan inte avbokas.",
                             status=in_sentence("booking_status", booking.status)),
                           code="not_cancellable", status_now=booking.status)
        if is_offer(booking) and booking.status == "awaiting_payment":
            raise Conflict(_("Ett erbjudande från väntelistan som ingen har tagit emot kan inte avbokas."),
                           code="not_cancellable", status_now=booking.status)
        refund, credit = host_cancellation_ore(booking)
        _queue_refund(booking, refund, "host_cancellation", now)
        before = booking.status
        booking.status = "cancelled_by_host"
        booking.cancelled_at = now
        booking.cancel_reason = reason
        booking.refund_ore = refund
        booking.invoice_credited_ore = credit
        db.session.execute(update(BedNight).where(
            BedNight.booking_id == booking.id, BedNight.state.in_(("held", "booked")))
            .values(state="host_cancelled"))
        audit.record(actor, "booking.cancelled_by_host", "booking", booking.id, before={"status": before},
                     after={"status": booking.status, "refund_ore": refund, "invoice_credited_ore": credit,
                            "reason": reason}, now=now)
        add_strike(actor, booking.host_id, f"host cancelled booking {booking.id}", now=now)
        add_system_flag(actor, host_id=booking.host_id, booking_id=booking.id, category="cancellation",
                        description=f"The host cancelled booking {booking.id}: {reason}", strike_given=True, now=now)
        events.emit(events.BOOKING_CANCELLED_BY_HOST, booking=booking, now=now)
    refunds.after_cancellation(booking_id)
    return booking
