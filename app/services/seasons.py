"""Seasons: admins set the nights, caps, terms and limits."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, func, insert, select, update

from app.extensions import db
from app.models import AllocationRequest, AllocationRound, BedPrice, Counter, PriceChange, Season
from app.services import audit, lottery
from app.services.base import Actor, now_or, unit_of_work
from app.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.services.terms import STANDARD_TERMS_TEXT, STANDARD_TERMS_VERSION

STOCKHOLM = ZoneInfo("Europe/Stockholm")

SEASON_FIELDS = (
    "year", "name", "first_night", "last_night", "bookings_open_at", "price_cap_ore", "max_increase_pct",
    "strike_limit", "hold_minutes", "free_cancellation_until", "late_cancellation_refund_pct",
    "terms_version", "terms_text", "max_beds_per_organisation", "max_open_holds",
    "requests_open_at", "allocation_at", "allocation_payment_hours", "unpaid_invoice_cancel_days",
)
REQUIRED_FIELDS = SEASON_FIELDS[:11]
# Optional settings that null sets back to their default (for the round's times: no round); a PATCH that leaves
# them out keeps them.
NULLABLE_FIELDS = ("max_beds_per_organisation", "requests_open_at", "allocation_at")
ROUND_FIELDS = ("requests_open_at", "allocation_at", "allocation_payment_hours")
DEFAULT_MAX_OPEN_HOLDS = 3
DEFAULT_ALLOCATION_PAYMENT_HOURS = 48
MAX_ALLOCATION_PAYMENT_HOURS = 30 * 24
# Days after an invoice's due date (and two reminders) before an invoice booking with nothing paid is cancelled
# and its beds freed (app.services.invoices.remind_due).
DEFAULT_UNPAID_INVOICE_CANCEL_DAYS = 14
MAX_PRICE_CAP_ORE = 10_000_000  # 100 000 kr a bed and night: beyond any real cap, inside a 32-bit column


def season_facts(season: Season) -> dict[str, Any]:
    return {field: getattr(season, field) for field in SEASON_FIELDS}


def _percent() -> str:
    return _("Mellan 0 och 100 procent.")


def _admins_only() -> str:
    return _("Bara administratörer ställer in säsonger.")


def year_errors(year: int) -> list[str]:
    """What is wrong with a season's year (every door that takes a year asks here)."""
    return [] if 2000 <= year <= 2100 else [_("Året ska vara mellan 2000 och 2100.")]


def price_errors(price_ore: int) -> list[str]:
    """What is wrong with an optional highest price per bed and night (a waiting list's limit)."""
    if 1 <= price_ore <= MAX_PRICE_CAP_ORE:
        return []
    return [_("Mellan 1 och %(max)s öre per bädd och natt, eller lämna tomt.", max=MAX_PRICE_CAP_ORE)]


def _check(values: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    if year_errors(values["year"]):
        errors["year"] = year_errors(values["year"])
    if not (values.get("name") or "").strip():
        errors["name"] = [_("Ge säsongen ett namn.")]
    if values["last_night"] < values["first_night"]:
        errors["last_night"] = [_("Den sista natten måste vara samma dag som den första eller senare.")]
    elif values["first_night"].year != values["year"]:
        errors["first_night"] = [_("Den första natten måste ligga i säsongens år.")]
    elif (values["last_night"] - values["first_night"]).days > 60:
        errors["last_night"] = [_("En säsong är högst 60 nätter.")]
    if values["bookings_open_at"].tzinfo is None:
        errors["bookings_open_at"] = [_("Ange tidszon, till exempel 2027-03-01T09:00:00+01:00.")]
    if values["price_cap_ore"] <= 0:
        errors["price_cap_ore"] = [_("Pristaket måste vara ett positivt antal öre.")]
    elif values["price_cap_ore"] > MAX_PRICE_CAP_ORE:
        errors["price_cap_ore"] = [_("Pristaket är högst %(max)s öre.", max=MAX_PRICE_CAP_ORE)]
    if not 0 <= values["max_increase_pct"] <= 100:
        errors["max_increase_pct"] = [_percent()]
    if not 1 <= values["strike_limit"] <= 100:
        errors["strike_limit"] = [_("Mellan 1 och 100.")]
    if not 1 <= values["hold_minutes"] <= 24 * 60:
        errors["hold_minutes"] = [_("Mellan 1 och 1440 minuter.")]
    if not 0 <= values["late_cancellation_refund_pct"] <= 100:
        errors["late_cancellation_refund_pct"] = [_percent()]
    if values.get("max_beds_per_organisation") is not None and not 1 <= values["max_beds_per_organisation"] <= 100_000:
        errors["max_beds_per_organisation"] = [_("Mellan 1 och 100000 bäddnätter, eller tomt för 20 gånger "
                                                 "säsongens antal nätter.")]
    if not 1 <= values["max_open_holds"] <= 1000:
        errors["max_open_holds"] = [_("Mellan 1 och 1000 obetalda kortreservationer.")]
    errors.update(_round_errors(values))
    if not 9 <= values["unpaid_invoice_cancel_days"] <= 365:
        errors["unpaid_invoice_cancel_days"] = [_("Mellan 9 och 365 dagar efter förfallodagen (efter två "
                                                  "påminnelser).")]
    if not (values.get("terms_version") or "").strip() or len(values["terms_version"]) > 40:
        errors["terms_version"] = [_("Ge villkoren en version (högst 40 tecken).")]
    if not (values.get("terms_text") or "").strip():
        errors["terms_text"] = [_("Villkorstexten får inte vara tom.")]
    if errors:
        raise ValidationFailed(errors)


def _round_errors(values: dict[str, Any]) -> dict[str, list[str]]:
    """The allocation round's times: both or neither, with a time zone, requests_open_at < allocation_at <=
    bookings_open_at; its payment time in hours."""
    errors: dict[str, list[str]] = {}
    hours = values.get("allocation_payment_hours") or 0
    if not 1 <= hours <= MAX_ALLOCATION_PAYMENT_HOURS:
        errors["allocation_payment_hours"] = [_("Mellan 1 och %(max)s timmar.", max=MAX_ALLOCATION_PAYMENT_HOURS)]
    opens, draws = values.get("requests_open_at"), values.get("allocation_at")
    if opens is None and draws is None:
        return errors
    for name, value in (("requests_open_at", opens), ("allocation_at", draws)):
        if value is None:
            errors[name] = [_("Ange både när ansökningarna öppnar och när dragningen sker, eller ingetdera.")]
        elif value.tzinfo is None:
            errors[name] = [_("Ange tidszon, till exempel 2027-03-01T09:00:00+01:00.")]
    if opens is None or draws is None or errors.keys() & {"requests_open_at", "allocation_at"}:
        return errors
    if not opens < draws:
        errors["allocation_at"] = [_("Dragningen måste ske efter att ansökningarna har öppnat.")]
    elif values["bookings_open_at"].tzinfo is not None and draws > values["bookings_open_at"]:
        errors["allocation_at"] = [_("Dragningen måste ske senast när bokningen öppnar.")]
    return errors


def _open_round(actor: Actor, season: Season, now: datetime) -> AllocationRound:
    """Give the season its round (flush only): a secret seed, its SHA-256 published from this moment on."""
    seed = lottery.new_seed()
    allocation_round = AllocationRound(season_id=season.id, seed=seed, seed_commitment=lottery.commitment(seed),
                                       draw_state="pending", created_at=now)
    db.session.add(allocation_round)
    db.session.flush()
    audit.record(actor, "allocation.round_created", "season", season.year,
                 after={"seed_commitment": allocation_round.seed_commitment,
                        "requests_open_at": season.requests_open_at, "allocation_at": season.allocation_at},
                 now=now)
    return allocation_round


def _check_round_change(season: Season, allocation_round: AllocationRound | None, before: dict[str, Any],
                        changes: dict[str, Any]) -> None:
    """What a season's round allows to change: nothing of the round once the draw has begun; not its removal, nor
    the terms its requests accepted in advance, while it has requests."""
    changed = {key for key, value in changes.items() if before.get(key) != value}
    if allocation_round is not None and allocation_round.draw_state != "pending" and changed & set(ROUND_FIELDS):
        raise Conflict(_("Dragningen för %(year)s är gjord eller pågår; omgångens tider kan inte ändras längre.",
                         year=season.year), code="round_drawn")
    if allocation_round is None or allocation_round.draw_state != "pending":
        return
    live = db.session.scalar(select(func.count(AllocationRequest.id)).where(
        AllocationRequest.season_id == season.id, AllocationRequest.status == "submitted")) or 0
    if not live:
        return
    if changes.get("requests_open_at", before["requests_open_at"]) is None:
        raise Conflict(_("Omgången har %(count)s ansökningar och kan inte tas bort.", count=live),
                       code="round_has_requests")
    if "terms_version" in changed:
        raise Conflict(_("Omgången har %(count)s ansökningar som har godkänt villkoren %(version)s i förväg; "
                         "villkorsversionen kan inte ändras före dragningen.", count=live,
                         version=before["terms_version"]), code="round_has_requests")


def create_season(actor: Actor, values: dict[str, Any], *, now: datetime | None = None) -> Season:
    """Create a season; the standard terms are used unless others are given."""
    now = now_or(now)
    if not actor.is_admin:
        raise Forbidden(_admins_only())
    values = {k: v for k, v in values.items() if k in SEASON_FIELDS}
    missing = [f for f in REQUIRED_FIELDS if values.get(f) is None]
    if missing:
        raise ValidationFailed({f: [_("Obligatoriskt.")] for f in missing})
    if not values.get("terms_version") and not values.get("terms_text"):
        values["terms_version"] = STANDARD_TERMS_VERSION
        values["terms_text"] = STANDARD_TERMS_TEXT
    elif not values.get("terms_text"):
        values["terms_text"] = STANDARD_TERMS_TEXT
    if values.get("max_open_holds") is None:
        values["max_open_holds"] = DEFAULT_MAX_OPEN_HOLDS
    if values.get("allocation_payment_hours") is None:
        values["allocation_payment_hours"] = DEFAULT_ALLOCATION_PAYMENT_HOURS
    if values.get("unpaid_invoice_cancel_days") is None:
        values["unpaid_invoice_cancel_days"] = DEFAULT_UNPAID_INVOICE_CANCEL_DAYS
    _check(values)
    with unit_of_work():
        if db.session.scalar(select(Season.id).where(Season.year == values["year"])) is not None:
            raise Conflict(_("Det finns redan en säsong för %(year)s; ändra den i stället.", year=values["year"]),
                           code="season_exists")
        season = Season(**values, created_at=now)
        db.session.add(season)
        for series in ("contract", "invoice", "credit_note"):
            db.session.add(Counter(name=f"{series}:{values['year']}", value=0))
        db.session.flush()
        audit.record(actor, "season.created", "season", season.year, after=season_facts(season), now=now)
        if season.has_round:
            _open_round(actor, season, now)
    return season


def update_season(actor: Actor, year: int, changes: dict[str, Any], *, now: datetime | None = None) -> Season:
    """Change any of a season's settings (the year itself is fixed)."""
    now = now_or(now)
    if not actor.is_admin:
        raise Forbidden(_admins_only())
    changes = {k: v for k, v in changes.items()
               if k in SEASON_FIELDS and k != "year" and (v is not None or k in NULLABLE_FIELDS)}
    with unit_of_work():
        # The round first (lock order: round, season, ...): a request or the draw holds it while it decides.
        allocation_round = db.session.scalar(
            select(AllocationRound).join(Season, Season.id == AllocationRound.season_id).where(Season.year == year)
            .with_for_update(of=AllocationRound).execution_options(populate_existing=True))
        # Locked: a booking or a price change reads the cap under FOR SHARE of this row, so each one is
        # wholly before or wholly after this change (a price above the cap in force is never sold).
        season = season_or_404(year, lock=True)
        before = season_facts(season)
        merged = {**before, **changes}
        _check(merged)
        _check_round_change(season, allocation_round, before, changes)
        for key, value in changes.items():
            setattr(season, key, value)
        audit.record(actor, "season.updated", "season", year, before=before, after=season_facts(season), now=now)
        if season.has_round and allocation_round is None:
            _open_round(actor, season, now)
        if season.price_cap_ore < before["price_cap_ore"]:
            _lower_prices_to_cap(season, now)
    return season


def _lower_prices_to_cap(season: Season, now: datetime) -> None:
    """A lowered cap lowers every price above it to the cap, in SQL, each logged as a price change by the
    system, with one audit entry (flush only; the caller holds the season row locked)."""
    cap = season.price_cap_ore
    above = and_(BedPrice.season_id == season.id, BedPrice.price_ore > cap)
    lowered = db.session.execute(select(BedPrice.bed_id, BedPrice.price_ore).where(above)
                                 .order_by(BedPrice.bed_id).with_for_update(key_share=True)).all()
    if not lowered:
        return
    db.session.execute(update(BedPrice).where(above).values(price_ore=cap, updated_at=now))
    db.session.execute(insert(PriceChange), [
        {"bed_id": bed_id, "season_id": season.id, "actor_id": None, "old_price_ore": old,
         "requested_price_ore": cap, "accepted": True, "refusal_code": None, "max_allowed_ore": cap, "at": now}
        for bed_id, old in lowered])
    audit.record(Actor.system(), "price.capped", "season", season.year,
                 after={"price_cap_ore": cap, "lowered": [{"bed_id": b, "old_price_ore": o} for b, o in lowered]},
                 now=now)


def stockholm_today(now: datetime | None = None) -> date:
    """Today's date in Sweden by the (injectable) clock."""
    return now_or(now).astimezone(STOCKHOLM).date()


def current_season(now: datetime | None = None) -> Season | None:
    """The current season (API.md): the earliest whose last night is today or later, Stockholm time,
    else the latest when every season is over. Every page, search default, publish, strike limit and
    public figure uses this one rule, so creating next year's season changes nothing for this one."""
    today = stockholm_today(now)
    season = db.session.scalar(select(Season).where(Season.last_night >= today)
                               .order_by(Season.last_night, Season.year).limit(1))
    if season is None:
        season = db.session.scalar(select(Season).order_by(Season.year.desc()).limit(1))
    return season


def latest_season(now: datetime | None = None) -> Season | None:
    """Older name, kept so callers on other branches keep working: the current season, never the newest."""
    return current_season(now)


_SEASON_FOR_YEAR = select(Season).where(Season.year == bindparam("year"))


def season_for_year(year: int) -> Season | None:
    """The season of a year, or None (for callers that fall back to another season)."""
    return db.session.scalar(_SEASON_FOR_YEAR, {"year": year})


def season_or_404(year: int, *, lock: bool = False) -> Season:
    """The season of a year, or NotFound ("Det finns ingen säsong 2027."): the one way every door asks.

    `lock` takes the row FOR KEY SHARE, fresh from the database, as a change to the season's settings needs.
    """
    query = select(Season).where(Season.year == year)
    if lock:
        query = query.with_for_update(key_share=True).execution_options(populate_existing=True)
    season = db.session.scalar(query)
    if season is None:
        raise NotFound(_("Det finns ingen säsong %(year)s.", year=year))
    return season


def season_for_stay(check_in: date) -> Season | None:
    return season_for_year(check_in.year)
