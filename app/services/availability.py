"""Availability: which beds are free every night of a stay."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Optional

from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select

from app.extensions import db
from app.i18n import STOCKHOLM as STOCKHOLM_TZ
from app.i18n import local_date
from app.models import Bed, BedNight, BedPrice, Booking, HostProfile, Listing, OCCUPYING_STATES, Room, Season
from app.services.base import now_or
from app.services.errors import DomainError, NotFound, ValidationFailed


@dataclass(slots=True)
class FreeBed:
    bed_id: int
    label: str
    room_name: str
    kind: str
    price_ore: int


@dataclass
class ListingResult:
    listing_id: int
    title: str
    walking_minutes: int
    free_beds: list[FreeBed] = field(default_factory=list)
    total_ore_for_n: int = 0


def check_stay(season: Season, check_in: date, check_out: date) -> int:
    """Validate a stay against the season; return its number of nights."""
    if check_out <= check_in:
        raise ValidationFailed({"check_out": [_("Utcheckningen måste vara efter incheckningen.")]})
    if check_in < season.first_night or check_out > season.check_out_day:
        raise DomainError(
            _("Säsongen %(year)s har nätterna %(first)s till %(last)s (utcheckning senast %(check_out)s).",
              year=season.year, first=local_date(season.first_night, "d MMM y"),
              last=local_date(season.last_night, "d MMM y"), check_out=local_date(season.check_out_day, "d MMM y")),
            code="outside_season", first_night=season.first_night.isoformat(),
            last_night=season.last_night.isoformat(),
        )
    return (check_out - check_in).days


def check_not_past(check_in: date, now: datetime) -> None:
    """Refuse a stay whose first night is before today in Stockholm (tonight is still on sale)."""
    today = now.astimezone(STOCKHOLM_TZ).date()
    if check_in < today:
        raise DomainError(
            _("Natten %(night)s är redan förbi; välj nätter från och med i dag.",
              night=local_date(check_in, "d MMM y")),
            code="night_in_past", today=today.isoformat(),
        )


def occupies(now: datetime):
    """SQL, with the booking outer-joined: the bed-night holds its bed now (a hold past its time does not)."""
    return and_(BedNight.state.in_(OCCUPYING_STATES),
                or_(BedNight.state != "held", Booking.expires_at.is_(None), Booking.expires_at > now))


def occupied_bed_ids(check_in: date, check_out: date, now: datetime):
    """SQL: the ids of beds occupied on some night of the stay (a hold past its time does not count).

    Uncorrelated, so the database evaluates it once, as one range scan over the stay's nights
    (index ix_bed_nights_night_bed), instead of probing bed_nights once per bed of the island.
    """
    return (
        select(BedNight.bed_id)
        .outerjoin(Booking, Booking.id == BedNight.booking_id)
        .where(
            BedNight.night >= check_in,
            BedNight.night < check_out,
            occupies(now),
        )
    )


def search(year: int, check_in: date, check_out: date, beds: int, *, max_walking_minutes: Optional[int] = None,
           max_price_ore: Optional[int] = None, now: Optional[datetime] = None,
           listing_id: Optional[int] = None) -> list[ListingResult]:
    """Published listings of approved hosts with at least `beds` beds free every night, cheapest first."""
    now = now_or(now)
    season = db.session.scalar(select(Season).where(Season.year == year))
    if season is None:
        raise NotFound(_("Det finns ingen säsong %(year)s.", year=year))
    if beds < 1 or beds > 500:
        raise ValidationFailed({"beds": [_("Mellan 1 och %(max)s bäddar.", max=500)]})
    nights = check_stay(season, check_in, check_out)
    free = (
        select(Listing.id.label("listing_id"), Listing.title, Listing.walking_minutes, Bed.id.label("bed_id"),
               Bed.label, Bed.kind, Room.name.label("room_name"), BedPrice.price_ore,
               func.count().over(partition_by=Listing.id).label("free_count"))
        .join(Room, Room.listing_id == Listing.id)
        .join(Bed, Bed.room_id == Room.id)
        .join(BedPrice, and_(BedPrice.bed_id == Bed.id, BedPrice.season_id == season.id))
        .join(HostProfile, HostProfile.user_id == Listing.host_id)
        .where(Listing.published.is_(True), HostProfile.vetting_status == "approved",
               Listing.accepted_terms_version == season.terms_version, Bed.removed_at.is_(None),
               Bed.id.not_in(occupied_bed_ids(check_in, check_out, now)))
    )
    if max_walking_minutes is not None:
        free = free.where(Listing.walking_minutes <= max_walking_minutes)
    if max_price_ore is not None:
        free = free.where(BedPrice.price_ore <= max_price_ore)
    if listing_id is not None:
        free = free.where(Listing.id == listing_id)
    rows = free.subquery()
    # Listings with fewer than `beds` free beds are left out by the database, not shipped to Python;
    # a Core result (plain tuples, no ORM row processing) keeps the thousands of rows cheap.
    query = (select(rows.c.listing_id, rows.c.title, rows.c.walking_minutes, rows.c.bed_id, rows.c.label,
                    rows.c.kind, rows.c.room_name, rows.c.price_ore).where(rows.c.free_count >= beds))
    results: dict[int, ListingResult] = {}
    for lid, title, walking, bed_id, label, kind, room_name, price in db.session.connection().execute(query).all():
        result = results.get(lid)
        if result is None:
            result = results[lid] = ListingResult(lid, title, walking)
        result.free_beds.append(FreeBed(bed_id, label, room_name, kind, price))
    for result in results.values():
        result.free_beds.sort(key=lambda b: (b.price_ore, b.bed_id))
        result.total_ore_for_n = sum(b.price_ore for b in result.free_beds[:beds]) * nights
    found = list(results.values())
    found.sort(key=lambda r: (r.total_ore_for_n, r.walking_minutes, r.listing_id))
    return found


@dataclass(frozen=True)
class ListingSummary:
    from_ore: Optional[int]  # the lowest price per bed and night this season
    free_beds: int  # priced beds free every night of the season


def listing_summaries(season: Optional[Season], listing_ids: list[int], *,
                      now: Optional[datetime] = None) -> dict[int, ListingSummary]:
    """Per listing: the lowest bed-night price of the season and how many priced beds are free all season."""
    if season is None or not listing_ids:
        return {}
    occupied = occupied_bed_ids(season.first_night, season.check_out_day, now_or(now))
    rows = db.session.execute(
        select(Room.listing_id, func.min(BedPrice.price_ore),
               func.count(Bed.id).filter(Bed.id.not_in(occupied)))
        .join(Bed, Bed.room_id == Room.id)
        .join(BedPrice, and_(BedPrice.bed_id == Bed.id, BedPrice.season_id == season.id))
        .where(Room.listing_id.in_(listing_ids), Bed.removed_at.is_(None))
        .group_by(Room.listing_id))
    return {lid: ListingSummary(low, free or 0) for lid, low, free in rows}


def taken_bed_nights(bed_ids: list[int], check_in: date, check_out: date) -> list[tuple[int, date]]:
    """The occupied (bed, night) pairs among these beds in the stay, holds past their time included."""
    rows = db.session.execute(
        select(BedNight.bed_id, BedNight.night).where(
            BedNight.bed_id.in_(bed_ids), BedNight.night >= check_in, BedNight.night < check_out,
            BedNight.state.in_(OCCUPYING_STATES),
        ).order_by(BedNight.night, BedNight.bed_id)
    )
    return [(bed_id, night) for bed_id, night in rows]


