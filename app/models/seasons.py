"""Seasons: the week's nights, price caps and standard terms."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import CheckConstraint, Date, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow


class Season(Model):
    __tablename__ = "seasons"
    __table_args__ = (
        CheckConstraint("last_night >= first_night", name="nights_ordered"),
        CheckConstraint("price_cap_ore > 0", name="cap_positive"),
        CheckConstraint("max_increase_pct >= 0", name="increase_not_negative"),
        CheckConstraint("strike_limit >= 1", name="strike_limit_positive"),
        CheckConstraint("hold_minutes >= 1", name="hold_positive"),
        CheckConstraint(
            "late_cancellation_refund_pct >= 0 AND late_cancellation_refund_pct <= 100", name="late_refund_pct"
        ),
        CheckConstraint("max_beds_per_organisation IS NULL OR max_beds_per_organisation >= 1",
                        name="max_beds_positive"),
        CheckConstraint("max_open_holds >= 1", name="max_open_holds_positive"),
        # The allocation round (API.md "The allocation round"): both times or neither, requests before the draw.
        CheckConstraint("(requests_open_at IS NULL) = (allocation_at IS NULL)", name="round_complete"),
        CheckConstraint("requests_open_at IS NULL OR requests_open_at < allocation_at", name="round_ordered"),
        CheckConstraint("allocation_payment_hours >= 1", name="allocation_payment_hours_positive"),
        CheckConstraint("unpaid_invoice_cancel_days >= 1", name="unpaid_cancel_days_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(120))
    first_night: Mapped[date] = mapped_column(Date)
    last_night: Mapped[date] = mapped_column(Date)
    bookings_open_at: Mapped[datetime] = mapped_column(UTCDateTime())
    price_cap_ore: Mapped[int] = mapped_column()
    max_increase_pct: Mapped[int] = mapped_column()
    strike_limit: Mapped[int] = mapped_column()
    hold_minutes: Mapped[int] = mapped_column()
    free_cancellation_until: Mapped[date] = mapped_column(Date)
    late_cancellation_refund_pct: Mapped[int] = mapped_column()
    terms_version: Mapped[str] = mapped_column(String(40))
    terms_text: Mapped[str] = mapped_column(Text)
    # Hoarding limits per organisation number: bed-nights held and booked at once (null: 20 x the
    # season's nights), and unpaid card holds at once.
    max_beds_per_organisation: Mapped[int | None] = mapped_column()
    max_open_holds: Mapped[int] = mapped_column(default=3, server_default=text("3"))
    # An optional allocation round before bookings open: requests from requests_open_at until allocation_at, then
    # the draw; card holds formed by the draw last allocation_payment_hours. The round's seed is AllocationRound's.
    requests_open_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    allocation_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    allocation_payment_hours: Mapped[int] = mapped_column(default=48, server_default=text("48"))
    # Days after an invoice's due date before an invoice booking with nothing paid is cancelled and its beds
    # freed (after reminders; app.services.invoices.remind_due).
    unpaid_invoice_cancel_days: Mapped[int] = mapped_column(default=14, server_default=text("14"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def has_round(self) -> bool:
        return self.requests_open_at is not None and self.allocation_at is not None

    @property
    def check_out_day(self) -> date:
        return self.last_night + timedelta(days=1)

    def nights(self) -> list[date]:
        count = (self.last_night - self.first_night).days + 1
        return [self.first_night + timedelta(days=i) for i in range(count)]

    def is_open(self, now: datetime) -> bool:
        return now >= self.bookings_open_at
