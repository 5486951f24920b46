"""The allocation round (API.md "The allocation round (fair opening)"): a season's draw and the requests in it."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

DRAW_STATES = ("pending", "drawing", "drawn")
REQUEST_STATUSES = ("submitted", "withdrawn", "allocated", "unallocated")
LIVE_REQUEST_SQL = "status <> 'withdrawn'"


class AllocationRound(Model):
    """A season's round: the secret seed, its published SHA-256, and how far the draw has come.

    Made once, when the season first gets a round, and never replaced: the database refuses a change of the seed
    or its commitment and the deletion of the row, so the commitment published before the first request stays
    the one the draw is checked against. `draw_state` moves pending -> drawing (ranks fixed) -> drawn (every
    request decided, the seed published)."""

    __tablename__ = "allocation_rounds"
    __table_args__ = (
        CheckConstraint("draw_state IN ('pending', 'drawing', 'drawn')", name="draw_state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    season_id: Mapped[int] = mapped_column(ForeignKey("seasons.id"), unique=True)
    # Secret until the draw: never in an API answer, a page, a log line or an audit entry before draw_state 'drawn'.
    seed: Mapped[str] = mapped_column(String(64))
    seed_commitment: Mapped[str] = mapped_column(String(64))
    draw_state: Mapped[str] = mapped_column(String(16), default="pending", server_default=text("'pending'"))
    draw_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    drawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AllocationRequest(Model):
    """One organisation's request in a season's round: a stay, a number of beds, limits and preferences, the
    contract accepted in advance; after the draw its rank and its order or waiting-list entry.

    One live (not withdrawn) request per organisation number and season, in the database too; `ref` and, once
    set, `rank` never change (database guards)."""

    __tablename__ = "allocation_requests"
    __table_args__ = (
        CheckConstraint("status IN ('submitted', 'withdrawn', 'allocated', 'unallocated')", name="status"),
        CheckConstraint("payment_method IN ('invoice', 'card')", name="payment_method"),
        CheckConstraint("beds >= 1 AND beds <= 100", name="beds_range"),
        CheckConstraint("max_listings >= 1 AND max_listings <= 5", name="max_listings_range"),
        CheckConstraint("check_out > check_in", name="stay_ordered"),
        CheckConstraint("rank IS NULL OR rank >= 1", name="rank_positive"),
        Index("uq_allocation_requests_organisation", "season_id", "organisation_number", unique=True,
              sqlite_where=text(LIVE_REQUEST_SQL), postgresql_where=text(LIVE_REQUEST_SQL)),
        Index("ix_allocation_requests_season_rank", "season_id", "rank"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    season_id: Mapped[int] = mapped_column(ForeignKey("seasons.id"))
    delegation_id: Mapped[int] = mapped_column(ForeignKey("delegations.id"), index=True)
    coordinator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # The delegation's number when the request was made: the one-request rule and the limits count by it.
    organisation_number: Mapped[str] = mapped_column(String(20))
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    check_in: Mapped[date] = mapped_column(Date)
    check_out: Mapped[date] = mapped_column(Date)
    beds: Mapped[int] = mapped_column()
    max_walking_minutes: Mapped[int | None] = mapped_column()
    max_price_ore: Mapped[int | None] = mapped_column()
    max_listings: Mapped[int] = mapped_column()
    # JSON list of listing ids, most wanted first (at most five).
    preferred_listing_ids: Mapped[str] = mapped_column(Text, default="[]")
    payment_method: Mapped[str] = mapped_column(String(8))
    # The contract accepted in advance: the season's terms of that moment, when and from where.
    terms_version: Mapped[str] = mapped_column(String(40))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    accepted_ip: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    rank: Mapped[int | None] = mapped_column()
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    waitlist_entry_id: Mapped[int | None] = mapped_column(ForeignKey("waitlist_entries.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
