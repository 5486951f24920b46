"""Card payments, refunds, Stripe events and the host payout ledger."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from uuid import uuid4

from sqlalchemy import CheckConstraint, ForeignKey, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:  # relationship targets: the mapper resolves them by name (app.models imports them all)
    from app.models.bookings import Booking


class Payment(Model):
    """One attempt to take a card payment; its id is the Stripe idempotency key."""

    __tablename__ = "payments"
    __table_args__ = (CheckConstraint("amount_ore > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Globally unique (ids repeat across databases sharing one Stripe account): the idempotency key
    # of this attempt's Stripe call and the PaymentIntent's metadata link back to this row.
    attempt_key: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: uuid4().hex)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), index=True)
    amount_ore: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(String(32), default="created")
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    payment_method_id: Mapped[str | None] = mapped_column(String(255))
    failure_message: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    booking: Mapped[Booking] = relationship()


class Refund(Model):
    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount_ore > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    amount_ore: Mapped[int] = mapped_column()
    reason: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    stripe_refund_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StripeEvent(Model):
    """A webhook event seen once: `processed` with its effect, or `failed` (shown to admins, retried)."""

    __tablename__ = "stripe_events"
    __table_args__ = (CheckConstraint("status IN ('processed', 'failed')", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    object_id: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="processed", server_default=text("'processed'"))
    attempts: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    error: Mapped[str | None] = mapped_column(String(500))
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Payout(Model):
    """What a host is owed for a booking, payable 24 hours after check-in."""

    __tablename__ = "payouts"
    __table_args__ = (
        CheckConstraint("amount_ore >= 0", name="amount_not_negative"),
        CheckConstraint("status IN ('scheduled', 'paid', 'void')", name="status"),
        CheckConstraint("withheld_ore >= 0", name="withheld_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), unique=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    amount_ore: Mapped[int] = mapped_column()
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    transfer_reference: Mapped[str | None] = mapped_column(String(255))
    # Withheld from the booking's share for the host's rehousing deductions; amount_ore is what is paid out.
    withheld_ore: Mapped[int] = mapped_column(default=0, server_default=text("0"))
