"""Flags raised against hosts."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:  # relationship targets: the mapper resolves them by name (app.models imports them all)
    from app.models.users import User

FLAG_CATEGORIES = ("overcharging", "double_selling", "cancellation", "misrepresentation", "other")


class Flag(Model):
    __tablename__ = "flags"
    __table_args__ = (
        CheckConstraint(
            "category IN ('overcharging', 'double_selling', 'cancellation', 'misrepresentation', 'other')",
            name="category",
        ),
        CheckConstraint("status IN ('open', 'upheld', 'dismissed')", name="status"),
        CheckConstraint("source IN ('coordinator', 'admin', 'system')", name="source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(String(16))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"))
    category: Mapped[str] = mapped_column(String(24))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    # A system flag from a host cancellation comes with its strike already given.
    strike_given: Mapped[bool] = mapped_column(Boolean, default=False)
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The host's answer (a fair hearing, issue 17), given within RESPONSE_DAYS of the flag.
    response: Mapped[str | None] = mapped_column(Text)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The host's status before the suspension this flag's strike caused (null: it caused none): an overturned
    # decision restores it exactly.
    strike_suspended_from: Mapped[str | None] = mapped_column(String(16))

    host: Mapped[User] = relationship(foreign_keys=[host_id])


class FlagAppeal(Model):
    """The host's appeal of the decision on a flag: one per decision (UNIQUE flag_id), decided by another admin."""

    __tablename__ = "flag_appeals"
    __table_args__ = (CheckConstraint("status IN ('open', 'upheld', 'overturned')", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), unique=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
