"""Price caps: the one place that decides whether a bed's price is allowed."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import and_, func, select

from app.extensions import db
from app.i18n import STOCKHOLM, kr
from app.models import Bed, BedPrice, Listing, PriceChange, Room, Season
from app.services import audit
from app.services.base import Actor, now_or, unit_of_work
from app.services.errors import Conflict, DomainError, ValidationFailed
from app.services.listings import owned_bed
from app.services.seasons import season_or_404


@dataclass(frozen=True)
class PriceDecision:
    allowed: bool
    max_allowed_ore: int
    code: str | None = None
    message: str | None = None


def normalise_address(address: str) -> str:
    """An address as compared for the year-over-year reference: case, spaces and punctuation do not count
    ("Strandgatan 1 A" is "strandgatan 1a")."""
    return "".join(ch for ch in (address or "").casefold() if ch.isalnum())


def _highest_last_season_price(listing_ids: list[int], season: Season) -> int | None:
    """The highest price of these listings' beds in the most recent earlier season that priced any of them."""
    return db.session.scalar(
        select(func.max(BedPrice.price_ore)).join(Season, Season.id == BedPrice.season_id)
        .join(Bed, Bed.id == BedPrice.bed_id).join(Room, Room.id == Bed.room_id)
        .where(Room.listing_id.in_(listing_ids), Season.year < season.year)
        .group_by(Season.year).order_by(Season.year.desc()).limit(1)
    )


def reference_price(bed_id: int, season: Season) -> tuple[int | None, str | None]:
    """The year-over-year reference follows the property, not the bed id (API.md): the bed's own last-season
    price, else the highest last-season price of its listing, else of any listing of the same host at the
    same address. Returns (price, where it came from: "bed", "listing" or "address"), or (None, None)."""
    own = db.session.scalar(
        select(BedPrice.price_ore).join(Season, Season.id == BedPrice.season_id)
        .where(BedPrice.bed_id == bed_id, Season.year < season.year)
        .order_by(Season.year.desc()).limit(1)
    )
    if own is not None:
        return own, "bed"
    listing = db.session.scalar(select(Listing).join(Room, Room.listing_id == Listing.id)
                                .join(Bed, Bed.room_id == Room.id).where(Bed.id == bed_id))
    if listing is None:
        return None, None
    in_listing = _highest_last_season_price([listing.id], season)
    if in_listing is not None:
        return in_listing, "listing"
    place = normalise_address(listing.address)
    siblings = [other_id for other_id, address in db.session.execute(
        select(Listing.id, Listing.address).where(Listing.host_id == listing.host_id, Listing.id != listing.id))
        if normalise_address(address) == place]
    at_address = _highest_last_season_price(siblings, season) if siblings else None
    return (at_address, "address") if at_address is not None else (None, None)


def previous_price_ore(bed_id: int, season: Season) -> int | None:
    """The year-over-year reference price of a bed (see reference_price)."""
    return reference_price(bed_id, season)[0]


def year_over_year_max_ore(previous_ore: int, max_increase_pct: int) -> int:
    return previous_ore * (100 + max_increase_pct) // 100


def _price_and_offer(bed_id: int, season: Season) -> tuple[int | None, bool]:
    """The bed's price this season, and whether its listing is published or the bed was recorded as on
    offer after this season's booking opened (`bed_prices.offered_at`, set when the listing is unpublished)."""
    row = db.session.execute(
        select(BedPrice.price_ore, BedPrice.offered_at, Listing.published).select_from(Bed)
        .join(Room, Room.id == Bed.room_id).join(Listing, Listing.id == Room.listing_id)
        .outerjoin(BedPrice, and_(BedPrice.bed_id == Bed.id, BedPrice.season_id == season.id))
        .where(Bed.id == bed_id)
    ).first()
    if row is None:
        return None, False
    price, offered_at, published = row
    return price, price is not None and (bool(published) or offered_at is not None)


def check_price(bed_id: int, season: Season, price_ore: int, now: datetime) -> PriceDecision:
    """Decide a price: under the cap and within the year-over-year limit; once booking opened, a bed that has
    been on offer since then may only fall. A host's lowering of a price is never refused."""
    cap = season.price_cap_ore
    previous, source = reference_price(bed_id, season)
    yoy_max = year_over_year_max_ore(previous, season.max_increase_pct) if previous is not None else None
    ceiling = min(cap, yoy_max) if yoy_max is not None else cap
    current, on_offer = _price_and_offer(bed_id, season)
    frozen = on_offer and season.is_open(now)
    if frozen:
        assert current is not None  # on offer only with a price (_price_and_offer)  # nosec B101
        ceiling = min(ceiling, current)
    if current is not None and price_ore <= current:
        return PriceDecision(True, ceiling)  # a lowering (or no change) is never refused
    if price_ore > cap:
        return PriceDecision(False, ceiling, "price_above_cap",
                             _("Säsongens pristak är %(cap)s per bädd och natt; det högsta pris du får sätta är "
                               "%(max)s.", cap=kr(cap), max=kr(ceiling)))
    if yoy_max is not None and price_ore > yoy_max:
        if source == "bed":
            message = _("Förra säsongen kostade bädden %(previous)s; högst +%(pct)s %% är tillåtet, så det "
                        "högsta pris du får sätta är %(max)s.", previous=kr(previous),
                        pct=season.max_increase_pct, max=kr(ceiling))
        else:
            message = _("Förra säsongen kostade den dyraste bädden på samma adress %(previous)s; höjningen räknas "
                        "mot den, högst +%(pct)s %%, så det högsta pris du får sätta är %(max)s.",
                        previous=kr(previous), pct=season.max_increase_pct, max=kr(ceiling))
        return PriceDecision(False, ceiling, "increase_above_limit", message)
    if frozen and current is not None and price_ore > current:
        return PriceDecision(False, ceiling, "price_frozen",
                             _("Bokningen har öppnat och bädden har varit till salu sedan dess: priset får sänkas "
                               "men inte höjas. Det högsta pris du får sätta är %(max)s.", max=kr(ceiling)))
    return PriceDecision(True, ceiling)


def set_price(actor: Actor, bed_id: int, year: int, price_ore: int, *, now: datetime | None = None) -> BedPrice:
    """Set a bed's all-in price per night for a season; every refusal is logged with the highest allowed price."""
    now = now_or(now)
    bed = owned_bed(actor, bed_id)
    listing_id = bed.room.listing_id
    if actor.role != "host":
        raise DomainError(_("Bara värden sätter priser."), code="forbidden", status=403)
    if not isinstance(price_ore, int) or isinstance(price_ore, bool) or price_ore <= 0:
        raise ValidationFailed({"price_ore": [_("Ett positivt heltal i öre (100 öre = 1 kr).")]})
    season = season_or_404(year)
    if season.last_night < now.astimezone(STOCKHOLM).date():
        raise DomainError(_("Säsongen %(year)s är över; dess priser ändras inte längre.", year=year),
                          code="season_over")
    season_id = season.id
    with unit_of_work():
        # Locks in the order every price writer and the booking take them (season, listing, bed, price):
        # the season FOR SHARE waits for a cap change in progress, the listing FOR SHARE for a publish or
        # unpublish, and the bed FOR NO KEY UPDATE makes two changes of one bed's price (its first one
        # included) one after the other, each deciding on the price the other left. NO KEY: a booking's
        # bed-nights reference the bed (a key share), and must not wait for this while it holds the price.
        season = db.session.scalars(select(Season).where(Season.id == season_id).with_for_update(read=True)
                                    .execution_options(populate_existing=True)).one()
        db.session.execute(select(Listing.id).where(Listing.id == listing_id).with_for_update(read=True))
        db.session.execute(select(Bed.id).where(Bed.id == bed_id).with_for_update(key_share=True))
        row = db.session.scalars(select(BedPrice).where(BedPrice.bed_id == bed_id, BedPrice.season_id == season_id)
                                 .execution_options(populate_existing=True)).one_or_none()
        decision = check_price(bed_id, season, price_ore, now)
        old = row.price_ore if row else None
        db.session.add(PriceChange(
            bed_id=bed_id, season_id=season_id, actor_id=actor.user_id, old_price_ore=old,
            requested_price_ore=price_ore, accepted=decision.allowed, refusal_code=decision.code,
            max_allowed_ore=decision.max_allowed_ore, at=now))
        if decision.allowed:
            if row is None:
                row = BedPrice(bed_id=bed_id, season_id=season_id, price_ore=price_ore, updated_at=now)
                db.session.add(row)
            else:
                row.price_ore = price_ore
                row.updated_at = now
            audit.record(actor, "price.set", "bed", bed_id, before={"price_ore": old, "year": year},
                         after={"price_ore": price_ore, "year": year}, now=now)
        else:
            audit.record(actor, "price.refused", "bed", bed_id,
                         after={"requested_ore": price_ore, "year": year, "code": decision.code,
                                "max_allowed_ore": decision.max_allowed_ore}, now=now)
    if not decision.allowed:
        error_class = Conflict if decision.code == "price_frozen" else DomainError
        assert decision.message is not None  # a refusal always says why  # nosec B101
        raise error_class(decision.message, code=decision.code, max_allowed_ore=decision.max_allowed_ore)
    assert row is not None  # an allowed price was written above  # nosec B101
    return row


def price_for(bed_id: int, season_id: int) -> int | None:
    return db.session.scalar(select(BedPrice.price_ore).where(
        BedPrice.bed_id == bed_id, BedPrice.season_id == season_id))
