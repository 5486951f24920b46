"""Binding contracts: immutable snapshots with their SHA-256."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:  # relationship targets: the mapper resolves them by name (app.models imports them all)
    from app.models.bookings import Booking


class Contract(Model):
    """Never updated or deleted: database triggers refuse it (see the initial migration)."""

    __tablename__ = "contracts"
    __table_args__ = (UniqueConstraint("season_id", "seq", name="uq_contracts_season_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), unique=True)
    season_id: Mapped[int] = mapped_column(ForeignKey("seasons.id"))
    seq: Mapped[int] = mapped_column()
    number: Mapped[str] = mapped_column(String(40), unique=True)
    version: Mapped[int] = mapped_column(default=1)
    terms_version: Mapped[str] = mapped_column(String(40))
    snapshot: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    host_offer_accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    coordinator_accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    coordinator_actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    coordinator_ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    booking: Mapped[Booking] = relationship(back_populates="contract")
