"""Listings, rooms, beds and their prices."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:  # relationship targets: the mapper resolves them by name (app.models imports them all)
    from app.models.users import User

BED_KINDS = ("single", "double_half", "bunk", "sofa")


class Listing(Model):
    __tablename__ = "listings"
    __table_args__ = (CheckConstraint("walking_minutes >= 0", name="walking_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(300))
    postal_code: Mapped[str] = mapped_column(String(6))
    walking_minutes: Mapped[int] = mapped_column()
    published: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    accepted_terms_version: Mapped[str | None] = mapped_column(String(40))
    offer_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    host: Mapped[User] = relationship()
    # The rooms on offer: a removed room keeps its row for the bookings it has had, and is left out here.
    rooms: Mapped[list[Room]] = relationship(
        primaryjoin="and_(Room.listing_id == Listing.id, Room.removed_at.is_(None))", order_by="Room.id",
        viewonly=True,
    )

    def beds(self) -> list[Bed]:
        return [bed for room in self.rooms for bed in room.beds]


class OfferAcceptance(Model):
    """The host's acceptance of a season's standard terms: the standing offer."""

    __tablename__ = "offer_acceptances"

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"), index=True)
    terms_version: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64))


class Room(Model):
    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    listing: Mapped[Listing] = relationship()
    # The beds on offer: a removed bed keeps its row for its history (bed-nights, prices), left out here.
    beds: Mapped[list[Bed]] = relationship(
        primaryjoin="and_(Bed.room_id == Room.id, Bed.removed_at.is_(None))", order_by="Bed.id", viewonly=True,
    )


class Bed(Model):
    __tablename__ = "beds"
    __table_args__ = (CheckConstraint("kind IN ('single', 'double_half', 'bunk', 'sofa')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"), index=True)
    label: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    # Set when the host removes a bed that has history: it leaves the listing, search, booking and pricing,
    # while its bed-nights, contracts and prices stay as they were.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    room: Mapped[Room] = relationship()


class BedPrice(Model):
    __tablename__ = "bed_prices"
    __table_args__ = (
        UniqueConstraint("bed_id", "season_id", name="uq_bed_prices_bed_season"),
        CheckConstraint("price_ore > 0", name="price_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bed_id: Mapped[int] = mapped_column(ForeignKey("beds.id"))
    season_id: Mapped[int] = mapped_column(ForeignKey("seasons.id"), index=True)
    price_ore: Mapped[int] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When the bed was last seen on offer (its listing published) after this season's booking opened,
    # recorded when the listing is unpublished; while the listing is published the flag itself says so.
    # Such a bed's price may only fall for the rest of the season (API.md).
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PriceChange(Model):
    """Every attempt to set a price, accepted or refused: the price history and its log."""

    __tablename__ = "price_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    bed_id: Mapped[int] = mapped_column(ForeignKey("beds.id"), index=True)
    season_id: Mapped[int] = mapped_column(ForeignKey("seasons.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    old_price_ore: Mapped[int | None] = mapped_column()
    requested_price_ore: Mapped[int] = mapped_column()
    accepted: Mapped[bool] = mapped_column(Boolean)
    refusal_code: Mapped[str | None] = mapped_column(String(40))
    max_allowed_ore: Mapped[int | None] = mapped_column()
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
