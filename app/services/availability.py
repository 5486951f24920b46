"""Availability: which beds are free every night of a stay."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from flask_babel import gettext as _
from sqlalchemy import and_, case, func, or_, select

from app.extensions import db
from app.i18n import STOCKHOLM as STOCKHOLM_TZ
from app.i18n import local_date
from app.models import OCCUPYING_STATES, Bed, BedNight, BedPrice, Booking, HostProfile, Listing, Room, Season
from app.services.base import now_or
from app.services.errors import DomainError, ValidationFailed
from app.services.seasons import season_or_404

MAX_PAGE = 200  # listings per page of a search, at most


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


@dataclass(frozen=True)
class Page:
    results: list[ListingResult]
    total: int  # listings that match, on every page


def checked_season(year: int, check_in: date, check_out: date, beds: int,
                   now: datetime | None = None) -> tuple[Season, int]:
    """The season of a search and the stay's nights, or the refusal every search door answers.

    With `now`, a stay whose first night has passed is refused too, as booking it would be.
    """
    season = season_or_404(year)
    if beds < 1 or beds > 500:
        raise ValidationFailed({"beds": [_("Mellan 1 och %(max)s bäddar.", max=500)]})
    nights = check_stay(season, check_in, check_out)
    if now is not None:
        check_not_past(check_in, now)
    return season, nights


def _bookable(season: Season, *columns):
    """SQL: the beds on offer in the season (published listings of approved hosts under the season's terms, beds not
    removed, priced for the season), with the given columns."""
    return (
        select(*columns).select_from(Listing)
        .join(Room, Room.listing_id == Listing.id)
        .join(Bed, Bed.room_id == Room.id)
        .join(BedPrice, and_(BedPrice.bed_id == Bed.id, BedPrice.season_id == season.id))
        .join(HostProfile, HostProfile.user_id == Listing.host_id)
        .where(Listing.published.is_(True), HostProfile.vetting_status == "approved",
               Listing.accepted_terms_version == season.terms_version, Bed.removed_at.is_(None))
    )


def bookable_beds(season: Season):
    """SQL: (listing_id, host_id, title, walking_minutes, bed_id, price_ore) of every bed on offer in the season,
    free or not (the allocation draw holds them in memory with their occupied nights, `occupied_nights`)."""
    return _bookable(season, Listing.id, Listing.host_id, Listing.title, Listing.walking_minutes, Bed.id,
                     BedPrice.price_ore)


def occupied_nights(first_night: date, check_out: date, now: datetime):
    """SQL: (bed_id, night) of every bed-night occupied from first_night until check_out (a hold past its time does
    not count, as in every search)."""
    return (select(BedNight.bed_id, BedNight.night)
            .outerjoin(Booking, Booking.id == BedNight.booking_id)
            .where(BedNight.night >= first_night, BedNight.night < check_out, occupies(now)))


def free_beds_query(season: Season, check_in: date, check_out: date, now: datetime, *,
                    max_walking_minutes: int | None = None, max_price_ore: int | None = None,
                    listing_id: int | None = None, exclude_host_id: int | None = None):
    """SQL: one row per bookable bed free every night of the stay, ranked by price within its listing (never a
    listing of `exclude_host_id`: a breaching host's own beds are no rehousing)."""
    free = _bookable(
        season, Listing.id.label("listing_id"), Listing.title, Listing.walking_minutes, Bed.id.label("bed_id"),
        Bed.label, Bed.kind, Room.name.label("room_name"), BedPrice.price_ore,
        func.count().over(partition_by=Listing.id).label("free_count"),
        func.row_number().over(partition_by=Listing.id, order_by=(BedPrice.price_ore, Bed.id)).label("price_rank"),
    ).where(Bed.id.not_in(occupied_bed_ids(check_in, check_out, now)))
    if max_walking_minutes is not None:
        free = free.where(Listing.walking_minutes <= max_walking_minutes)
    if max_price_ore is not None:
        free = free.where(BedPrice.price_ore <= max_price_ore)
    if listing_id is not None:
        free = free.where(Listing.id == listing_id)
    if exclude_host_id is not None:
        free = free.where(Listing.host_id != exclude_host_id)
    return free.subquery()


def search_page(year: int, check_in: date, check_out: date, beds: int, *, limit: int | None = None,
                offset: int = 0, max_walking_minutes: int | None = None, max_price_ore: int | None = None,
                now: datetime | None = None, listing_id: int | None = None, refuse_past: bool = True) -> Page:
    """One page of the listings with at least `beds` beds free every night, cheapest first (all with no limit).

    The database ranks and counts the listings and cuts the page (a window count gives the total), then
    sends only the page's beds, so the first page costs the same whatever the island's size.
    """
    now = now_or(now)
    if limit is not None and not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed({"limit": [_("Mellan 1 och %(max)s.", max=MAX_PAGE)]})
    if offset < 0:
        raise ValidationFailed({"offset": [_("Minst 0.")]})
    season, nights = checked_season(year, check_in, check_out, beds, now if refuse_past else None)
    free = free_beds_query(season, check_in, check_out, now, max_walking_minutes=max_walking_minutes,
                           max_price_ore=max_price_ore, listing_id=listing_id)
    total_ore = (func.sum(case((free.c.price_rank <= beds, free.c.price_ore), else_=0)) * nights)
    ranked = (select(free.c.listing_id, total_ore.label("total_ore"), func.count().over().label("matching"))
              .where(free.c.free_count >= beds)
              .group_by(free.c.listing_id, free.c.walking_minutes)
              .order_by(total_ore, free.c.walking_minutes, free.c.listing_id)
              .offset(offset))
    if limit is not None:
        ranked = ranked.limit(limit)
    connection = db.session.connection()
    page = connection.execute(ranked).all()
    if page:
        total = page[0].matching
    else:  # past the last page the window has no row to carry the count
        total = connection.execute(select(func.count(func.distinct(free.c.listing_id)))
                                   .where(free.c.free_count >= beds)).scalar_one()
    if not page:
        return Page([], total)
    order = {row.listing_id: i for i, row in enumerate(page)}
    totals = {row.listing_id: row.total_ore for row in page}
    beds_query = (select(free.c.listing_id, free.c.title, free.c.walking_minutes, free.c.bed_id, free.c.label,
                         free.c.kind, free.c.room_name, free.c.price_ore)
                  .where(free.c.listing_id.in_(list(order)))
                  .order_by(free.c.listing_id, free.c.price_ore, free.c.bed_id))
    results: dict[int, ListingResult] = {}
    # A Core result (plain tuples, no ORM row processing) keeps the thousands of rows cheap.
    for lid, title, walking, bed_id, label, kind, room_name, price in connection.execute(beds_query).all():
        result = results.get(lid)
        if result is None:
            result = results[lid] = ListingResult(lid, title, walking, total_ore_for_n=int(totals[lid]))
        result.free_beds.append(FreeBed(bed_id, label, room_name, kind, price))
    return Page(sorted(results.values(), key=lambda r: order[r.listing_id]), total)


def search(year: int, check_in: date, check_out: date, beds: int, *, max_walking_minutes: int | None = None,
           max_price_ore: int | None = None, now: datetime | None = None,
           listing_id: int | None = None) -> list[ListingResult]:
    """Every published listing of approved hosts with at least `beds` beds free every night, cheapest first.

    For the waiting list, which may look at a stay that has begun; the search doors use `search_page`.
    """
    return search_page(year, check_in, check_out, beds, max_walking_minutes=max_walking_minutes,
                       max_price_ore=max_price_ore, now=now, listing_id=listing_id, refuse_past=False).results


@dataclass(frozen=True)
class ListingSummary:
    from_ore: int | None  # the lowest price per bed and night this season
    free_beds: int  # priced beds free every night of the season


def listing_summaries(season: Season | None, listing_ids: list[int], *,
                      now: datetime | None = None) -> dict[int, ListingSummary]:
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


