"""Price caps: the one place that decides whether a bed's price is allowed."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from flask_babel import gettext as _
from sqlalchemy import select

from app.extensions import db
from app.i18n import STOCKHOLM, kr
from app.models import BedPrice, PriceChange, Season
from app.services import audit
from app.services.base import Actor, now_or, unit_of_work
from app.services.errors import Conflict, DomainError, NotFound, ValidationFailed
from app.services.listings import owned_bed


@dataclass(frozen=True)
class PriceDecision:
    allowed: bool
    max_allowed_ore: int
    code: Optional[str] = None
    message: Optional[str] = None


def previous_price_ore(bed_id: int, season: Season) -> Optional[int]:
    """The same bed's price in the most recent earlier season that priced it."""
    return db.session.scalar(
        select(BedPrice.price_ore).join(Season, Season.id == BedPrice.season_id)
        .where(BedPrice.bed_id == bed_id, Season.year < season.year)
        .order_by(Season.year.desc()).limit(1)
    )


def year_over_year_max_ore(previous_ore: int, max_increase_pct: int) -> int:
    return previous_ore * (100 + max_increase_pct) // 100


def check_price(bed_id: int, season: Season, price_ore: int, now: datetime) -> PriceDecision:
    """Decide a price: under the cap, within the year-over-year limit, never raised once booking opened."""
    cap = season.price_cap_ore
    previous = previous_price_ore(bed_id, season)
    yoy_max = year_over_year_max_ore(previous, season.max_increase_pct) if previous is not None else None
    ceiling = min(cap, yoy_max) if yoy_max is not None else cap
    current = db.session.scalar(select(BedPrice.price_ore).where(
        BedPrice.bed_id == bed_id, BedPrice.season_id == season.id))
    if current is not None and season.is_open(now):
        ceiling = min(ceiling, current)
    if price_ore > cap:
        return PriceDecision(False, ceiling, "price_above_cap",
                             _("Säsongens pristak är %(cap)s per bädd och natt; det högsta pris du får sätta är "
                               "%(max)s.", cap=kr(cap), max=kr(ceiling)))
    if yoy_max is not None and price_ore > yoy_max:
        return PriceDecision(False, ceiling, "increase_above_limit",
                             _("Förra säsongen kostade bädden %(previous)s; högst +%(pct)s %% är tillåtet, så det "
                               "högsta pris du får sätta är %(max)s.", previous=kr(previous),
                               pct=season.max_increase_pct, max=kr(ceiling)))
    if current is not None and season.is_open(now) and price_ore > current:
        return PriceDecision(False, ceiling, "price_frozen",
                             _("Bokningen har öppnat: priser får sänkas men inte höjas. Det högsta pris du får "
                               "sätta är %(max)s.", max=kr(ceiling)))
    return PriceDecision(True, ceiling)


def set_price(actor: Actor, bed_id: int, year: int, price_ore: int, *, now: Optional[datetime] = None) -> BedPrice:
    """Set a bed's all-in price per night for a season; every refusal is logged with the highest allowed price."""
    now = now_or(now)
    owned_bed(actor, bed_id)
    if actor.role != "host":
        raise DomainError(_("Bara värden sätter priser."), code="forbidden", status=403)
    if not isinstance(price_ore, int) or isinstance(price_ore, bool) or price_ore <= 0:
        raise ValidationFailed({"price_ore": [_("Ett positivt heltal i öre (100 öre = 1 kr).")]})
    season = db.session.scalar(select(Season).where(Season.year == year))
    if season is None:
        raise NotFound(_("Det finns ingen säsong %(year)s.", year=year))
    if season.last_night < now.astimezone(STOCKHOLM).date():
        raise DomainError(_("Säsongen %(year)s är över; dess priser ändras inte längre.", year=year),
                          code="season_over")
    with unit_of_work():
        decision = check_price(bed_id, season, price_ore, now)
        row = db.session.scalar(select(BedPrice).where(BedPrice.bed_id == bed_id, BedPrice.season_id == season.id))
        old = row.price_ore if row else None
        db.session.add(PriceChange(
            bed_id=bed_id, season_id=season.id, actor_id=actor.user_id, old_price_ore=old,
            requested_price_ore=price_ore, accepted=decision.allowed, refusal_code=decision.code,
            max_allowed_ore=decision.max_allowed_ore, at=now))
        if decision.allowed:
            if row is None:
                row = BedPrice(bed_id=bed_id, season_id=season.id, price_ore=price_ore, updated_at=now)
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
        raise error_class(decision.message, code=decision.code, max_allowed_ore=decision.max_allowed_ore)
    return row


def price_for(bed_id: int, season_id: int) -> Optional[int]:
    return db.session.scalar(select(BedPrice.price_ore).where(
        BedPrice.bed_id == bed_id, BedPrice.season_id == season_id))
