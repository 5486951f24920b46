"""The season's public figures: vetted hosts, beds, booked share, prices, cancellations, flags."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import and_, distinct, func, or_, select

from app.extensions import db
from app.models import Bed, BedNight, BedPrice, Booking, Contract, Flag, HostProfile, Listing, Room, Season
from app.services.errors import NotFound
from app.services.seasons import current_season, season_or_404


def percentile(sorted_values: list[int], pct: int) -> int | None:
    """Nearest-rank percentile of integer öre (no floats)."""
    if not sorted_values:
        return None
    rank = max(1, -(-pct * len(sorted_values) // 100))
    return sorted_values[rank - 1]


def _prices(season: Season) -> list[int]:
    return sorted(db.session.scalars(
        select(BedPrice.price_ore).join(Bed, Bed.id == BedPrice.bed_id).join(Room, Room.id == Bed.room_id)
        .join(Listing, Listing.id == Room.listing_id).where(BedPrice.season_id == season.id,
                                                            Listing.published.is_(True))
    ))


def _flags_upheld(season: Season) -> int:
    """Upheld flags of this season: about one of its bookings, or, with no booking, resolved while it
    was the season being booked (from its opening until the next season opened)."""
    next_open = db.session.scalar(select(Season.bookings_open_at).where(Season.year > season.year)
                                  .order_by(Season.year).limit(1))
    in_window = and_(Flag.booking_id.is_(None), Flag.resolved_at >= season.bookings_open_at)
    if next_open is not None:
        in_window = and_(in_window, Flag.resolved_at < next_open)
    of_booking = Flag.booking_id.in_(select(Booking.id).where(Booking.season_id == season.id))
    return db.session.scalar(select(func.count(Flag.id)).where(
        Flag.status == "upheld", or_(of_booking, in_window))) or 0


def figures(year: int | None = None) -> dict:
    """Everything the transparency page shows, for one season."""
    if year is None:
        season = current_season()
        if season is None:
            raise NotFound(_("Det finns ingen säsong än."))
    else:
        season = season_or_404(year)
    prices = _prices(season)
    previous = db.session.scalar(select(Season).where(Season.year < season.year).order_by(Season.year.desc()))
    prev_prices = _prices(previous) if previous else []
    beds = db.session.scalar(
        select(func.count(distinct(BedPrice.bed_id))).join(Bed, Bed.id == BedPrice.bed_id)
        .join(Room, Room.id == Bed.room_id).join(Listing, Listing.id == Room.listing_id)
        .where(BedPrice.season_id == season.id, Listing.published.is_(True), Bed.removed_at.is_(None))) or 0
    nights = len(season.nights())
    sold = db.session.scalar(select(func.count(BedNight.id)).where(
        BedNight.state == "booked", BedNight.night >= season.first_night,
        BedNight.night <= season.last_night)) or 0
    capacity = beds * nights
    return {
        "year": season.year,
        "vetted_hosts": db.session.scalar(select(func.count(HostProfile.user_id)).where(
            HostProfile.vetting_status == "approved")) or 0,
        "beds": beds,
        "bed_nights": capacity,
        "bed_nights_booked": sold,
        "nights": nights,
        "booked_share": min(1.0, round(sold / capacity, 4)) if capacity else 0.0,
        "median_price_ore": percentile(prices, 50),
        "p90_price_ore": percentile(prices, 90),
        "price_cap_ore": season.price_cap_ore,
        "previous_year": ({"year": previous.year, "median_price_ore": percentile(prev_prices, 50),
                           "p90_price_ore": percentile(prev_prices, 90)} if previous and prev_prices else None),
        "host_cancellations": db.session.scalar(select(func.count(Booking.id)).where(
            Booking.season_id == season.id, Booking.status == "cancelled_by_host")) or 0,
        "flags_upheld": _flags_upheld(season),
        "rehousings": _rehousings(season),
        # A cap can become the going price (Knittel & Stango 2003): the share of the season's prices set at it.
        "prices_at_cap_share": (round(sum(1 for price in prices if price >= season.price_cap_ore) / len(prices), 4)
                                if prices else 0.0),
    }


def _rehousings(season: Season) -> dict:
    """Breaches of the season whose coordinator was offered comparable beds, and those who accepted them (an
    offer spanning several listings counts once)."""
    offered = db.session.scalar(select(func.count(distinct(Booking.rehoused_from_id))).where(
        Booking.season_id == season.id, Booking.rehoused_from_id.is_not(None))) or 0
    accepted = db.session.scalar(select(func.count(distinct(Booking.rehoused_from_id))).where(
        Booking.season_id == season.id, Booking.rehoused_from_id.is_not(None),
        Booking.id.in_(select(Contract.booking_id)))) or 0
    return {"offered": offered, "accepted": accepted}
