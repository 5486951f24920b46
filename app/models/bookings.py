"""Delegations, bookings and the bed-night inventory."""
from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:  # relationship targets: the mapper resolves them by name (app.models imports them all)
    from app.models.contracts import Contract
    from app.models.listings import Bed, Listing
    from app.models.seasons import Season
    from app.models.users import User

BOOKING_STATUSES = (
    "awaiting_payment", "confirmed", "cancelled_by_guest", "cancelled_by_host", "expired", "completed", "offered",
)
# States that occupy a bed for a night. Released rows stay as history of the booking's lines.
OCCUPYING_STATES = ("held", "booked", "host_block", "host_cancelled")
BED_NIGHT_STATES = OCCUPYING_STATES + ("released",)
OCCUPYING_SQL = "state IN ('held', 'booked', 'host_block', 'host_cancelled')"
# A booking's bed-nights that are still its own (not released by a cancellation, nor locked by a host's breach).
LIVE_LINE_STATES = ("held", "booked")


class Delegation(Model):
    __tablename__ = "delegations"

    id: Mapped[int] = mapped_column(primary_key=True)
    coordinator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # Normalised NNNNNN-NNNN; the delegations of one number share the season's hoarding limits.
    organisation_number: Mapped[str] = mapped_column(String(20), index=True)
    # Invoicing (API.md "Invoices organisations can pay"), all optional: the buyer's reference (else the booking
    # number is the BuyerReference), the accounts mailbox invoices go to (else the coordinator's), the address.
    buyer_reference: Mapped[str | None] = mapped_column(String(100))
    invoice_email: Mapped[str | None] = mapped_column(String(254))
    address: Mapped[str | None] = mapped_column(String(300))
    postal_code: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(100))
    calendar_token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    members: Mapped[list[Member]] = relationship(back_populates="delegation", order_by="Member.id")
    coordinator: Mapped[User] = relationship()


class Member(Model):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    delegation_id: Mapped[int] = mapped_column(ForeignKey("delegations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    # The secret of the member's private itinerary link (/itinerary/<token>). Every itinerary mail and the
    # coordinator's pages show the link again, so it is kept as issued, like the calendar feeds' tokens (a hash
    # could not be turned back into the link); a new e-mail address gets a new token.
    itinerary_token: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    # SHA-256 of the itinerary the member was last sent (null: none sent, or no bed since): the itinerary mail
    # goes out when what the member would be told differs from it (app.services.itineraries.refresh).
    itinerary_digest: Mapped[str | None] = mapped_column(String(64))

    delegation: Mapped[Delegation] = relationship(back_populates="members")


ORDER_STATUSES = ("awaiting_payment", "confirmed")


class Order(Model):
    """Several bookings, one per listing, formed together in one transaction (API.md "Orders").

    `status` is what the order was when it was formed (card: awaiting_payment, invoice: confirmed);
    what it is now follows from its bookings (`orders.order_status`)."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("status IN ('awaiting_payment', 'confirmed')", name="status"),
        CheckConstraint("total_ore >= 0", name="total_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delegation_id: Mapped[int] = mapped_column(ForeignKey("delegations.id"), index=True)
    coordinator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(24))
    total_ore: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    bookings: Mapped[list[Booking]] = relationship(back_populates="order", order_by="Booking.id")


class Booking(Model):
    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint(
            "status IN ('awaiting_payment', 'confirmed', 'cancelled_by_guest', 'cancelled_by_host', "
            "'expired', 'completed', 'offered')",
            name="status",
        ),
        CheckConstraint("payment_method IN ('invoice', 'card')", name="payment_method"),
        CheckConstraint("total_ore >= 0", name="total_not_negative"),
        CheckConstraint("refund_ore >= 0", name="refund_not_negative"),
        CheckConstraint("check_out > check_in", name="stay_ordered"),
        CheckConstraint("kind IN ('booking', 'waitlist_offer')", name="kind"),
        CheckConstraint(
            "refund_reason IN ('late_payment_beds_taken', 'late_payment_over_limit', 'payment_after_cancellation', "
            "'duplicate_payment')",
            name="refund_reason",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delegation_id: Mapped[int] = mapped_column(ForeignKey("delegations.id"), index=True)
    season_id: Mapped[int] = mapped_column(ForeignKey("seasons.id"), index=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"), index=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    coordinator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(24))
    payment_method: Mapped[str] = mapped_column(String(8))
    total_ore: Mapped[int] = mapped_column()
    refund_ore: Mapped[int] = mapped_column(default=0)
    # What a guest cancellation took off an unpaid invoice (the terms' share); the rest stays due.
    invoice_credited_ore: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    check_in: Mapped[date] = mapped_column(Date)
    check_out: Mapped[date] = mapped_column(Date)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_reason: Mapped[str | None] = mapped_column(String(1000))
    invoice_number: Mapped[str | None] = mapped_column(String(40), unique=True)
    invoice_due_on: Mapped[date | None] = mapped_column(Date)
    # How the booking came to be: booked directly, or held for a waiting-list offer (it stays
    # 'waitlist_offer' once accepted, so its mails and rules can tell).
    kind: Mapped[str] = mapped_column(String(16), default="booking", server_default=text("'booking'"))
    # Why a card payment on this booking could not buy the beds and was queued for a full refund: a key of
    # ledger.REFUND_REASONS (translated when shown), or null.
    refund_reason: Mapped[str | None] = mapped_column(String(40))
    # The order this booking was formed in with others (POST /orders), or null for a booking of its own.
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    # A rehousing offer (status `offered` until accepted) names the booking whose host broke the contract.
    rehoused_from_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"), index=True)

    delegation: Mapped[Delegation] = relationship()
    order: Mapped[Order | None] = relationship(back_populates="bookings")
    listing: Mapped[Listing] = relationship()
    season: Mapped[Season] = relationship()
    lines: Mapped[list[BedNight]] = relationship(
        back_populates="booking", order_by="(BedNight.night, BedNight.bed_id)"
    )
    contract: Mapped[Contract | None] = relationship(back_populates="booking", uselist=False)

    @property
    def is_cancelled(self) -> bool:
        return self.status in ("cancelled_by_guest", "cancelled_by_host", "expired")

    @property
    def live_lines(self) -> list[BedNight]:
        """The bed-nights the booking still holds (a partial cancellation released the others)."""
        return [line for line in self.lines if line.state in LIVE_LINE_STATES]


class BedNight(Model):
    """One bed for one night. At most one occupying row per (bed, night), enforced by the database."""

    __tablename__ = "bed_nights"
    __table_args__ = (
        CheckConstraint(
            "state IN ('held', 'booked', 'host_block', 'host_cancelled', 'released')", name="state"
        ),
        CheckConstraint("price_ore IS NULL OR price_ore > 0", name="price_positive"),
        Index(
            "uq_bed_nights_occupied",
            "bed_id",
            "night",
            unique=True,
            sqlite_where=text(OCCUPYING_SQL),
            postgresql_where=text(OCCUPYING_SQL),
        ),
        Index("ix_bed_nights_night_bed", "night", "bed_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bed_id: Mapped[int] = mapped_column(ForeignKey("beds.id"))
    night: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"), index=True)
    price_ore: Mapped[int | None] = mapped_column(Integer)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    booking: Mapped[Booking | None] = relationship(back_populates="lines")
    bed: Mapped[Bed] = relationship()
    member: Mapped[Member | None] = relationship()


class HostDeduction(Model):
    """What a breaching host owes for an accepted rehousing offer: the new listing's price less the price
    offered, over the offer's bed-nights. One row per offer (UNIQUE), append-only (triggers, migration 0019)."""

    __tablename__ = "host_deductions"
    __table_args__ = (CheckConstraint("amount_ore > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    breached_booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"))
    offer_booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), unique=True)
    amount_ore: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IdempotencyKey(Model):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column()
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Counter(Model):
    """Gap-free consecutive numbers (contracts, invoices), one row per series."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)
