"""The e-mail outbox and the waiting list."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow


class OutboxEmail(Model):
    """Mail is written here in the business transaction and sent later, with retries."""

    __tablename__ = "outbox_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    attachment_name: Mapped[str | None] = mapped_column(String(200))
    attachment_mime: Mapped[str | None] = mapped_column(String(80))
    attachment: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set while one sender has the message (claimed, not yet recorded): no other sender takes it before then.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WaitlistEntry(Model):
    __tablename__ = "waitlist_entries"
    __table_args__ = (
        CheckConstraint("beds >= 1", name="beds_positive"),
        CheckConstraint("status IN ('waiting', 'offered', 'booked', 'expired', 'cancelled')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delegation_id: Mapped[int] = mapped_column(ForeignKey("delegations.id"), index=True)
    season_id: Mapped[int] = mapped_column(ForeignKey("seasons.id"))
    check_in: Mapped[date] = mapped_column(Date)
    check_out: Mapped[date] = mapped_column(Date)
    beds: Mapped[int] = mapped_column()
    max_walking_minutes: Mapped[int | None] = mapped_column()
    max_price_ore: Mapped[int | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    offer_booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"))
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
