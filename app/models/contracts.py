"""Binding contracts: immutable snapshots with their SHA-256, and the amendments appended beside them."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:  # relationship targets: the mapper resolves them by name (app.models imports them all)
    from app.models.bookings import Booking

AMENDMENT_KINDS = ("guest_cancellation", "arrival_report")


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
    amendments: Mapped[list[Amendment]] = relationship(back_populates="contract", order_by="Amendment.seq")


class Amendment(Model):
    """A change to a booking under its contract's terms, recorded beside the contract, which never changes
    (API.md "Changing a booking"). Today one kind: the guest cancelled some bed-nights.

    Numbered per contract, gap-free, as "<contract number>-A<seq>" (SP-2027-000123-A1, -A2, ...): the
    number names the contract it amends, and the booking's row lock makes the series gap-free (UNIQUE
    (contract_id, seq) is the backstop). Never updated or deleted: database triggers refuse it, as they do
    for contracts (migration 0014).
    """

    __tablename__ = "amendments"
    __table_args__ = (
        UniqueConstraint("contract_id", "seq", name="uq_amendments_contract_seq"),
        CheckConstraint("seq > 0", name="seq_positive"),
        CheckConstraint("kind IN ('guest_cancellation', 'arrival_report')", name="kind"),
        CheckConstraint("lines_ore > 0", name="lines_positive"),
        CheckConstraint("refund_ore >= 0 AND invoice_credit_ore >= 0", name="money_not_negative"),
        CheckConstraint("refund_ore + invoice_credit_ore <= lines_ore", name="money_within_lines"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), index=True)
    seq: Mapped[int] = mapped_column()
    number: Mapped[str] = mapped_column(String(48), unique=True)
    kind: Mapped[str] = mapped_column(String(24))
    # [{bed_id, bed, night, price_ore}] in (night, bed_id) order: the contract's own lines this amendment cancels.
    lines: Mapped[list[dict]] = mapped_column(JSON)
    lines_ore: Mapped[int] = mapped_column()  # the contract's value of those lines
    refund_ore: Mapped[int] = mapped_column()  # card money paid back for them
    invoice_credit_ore: Mapped[int] = mapped_column()  # taken off an unpaid invoice for them
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    contract: Mapped[Contract] = relationship(back_populates="amendments")
