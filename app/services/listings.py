"""Listings, rooms and beds; publishing is the host's binding standing offer."""
from __future__ import annotations

from datetime import date, datetime

from flask_babel import gettext as _
from sqlalchemy import delete, func, select, update

from app.extensions import db
from app.models import (
    BED_KINDS,
    Bed,
    BedNight,
    BedPrice,
    Booking,
    HostProfile,
    Listing,
    OfferAcceptance,
    PriceChange,
    Room,
    Season,
)
from app.services import audit
from app.services.availability import occupies
from app.services.base import Actor, local_date, now_or, unit_of_work
from app.services.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from app.services.seasons import current_season
from app.services.text import clean_text
from app.services.vetting import is_host_approved, normalise_gotland_postal_code


def _text(errors, field, value, limit, required=True, multiline=False):
    value = (value or "").strip()
    if (required and not value) or len(value) > limit:
        errors[field] = [_("Obligatoriskt, högst %(max)s tecken.", max=limit) if required
                         else _("Högst %(max)s tecken.", max=limit)]
    return clean_text(value, field, multiline=multiline, errors=errors)


def _listing_values(title, description, address, postal_code, walking_minutes) -> dict:
    errors: dict[str, list[str]] = {}
    values = {
        "title": _text(errors, "title", title, 200),
        "description": _text(errors, "description", description, 5000, required=False, multiline=True),
        "address": _text(errors, "address", address, 300),
    }
    if not isinstance(walking_minutes, int) or isinstance(walking_minutes, bool) or not 0 <= walking_minutes <= 600:
        errors["walking_minutes"] = [_("Minuters promenad till Almedalen, ett heltal från 0 till 600.")]
    if errors:
        raise ValidationFailed(errors)
    values["postal_code"] = normalise_gotland_postal_code(postal_code)
    values["walking_minutes"] = walking_minutes
    return values


def owned_listing(actor: Actor, listing_id: int) -> Listing:
    """The host's own listing, or 404 (another host's listing is not revealed)."""
    listing = db.session.get(Listing, listing_id)
    if listing is None or (listing.host_id != actor.user_id and not actor.is_admin):
        raise NotFound(_("Boendet finns inte."))
    return listing


def owned_room(actor: Actor, room_id: int) -> Room:
    """The host's own room on offer, or 404 (a removed room is gone for every action)."""
    room = db.session.get(Room, room_id)
    if room is None or room.removed_at is not None or (room.listing.host_id != actor.user_id and not actor.is_admin):
        raise NotFound(_("Rummet finns inte."))
    return room


def owned_bed(actor: Actor, bed_id: int) -> Bed:
    """The host's own bed on offer, or 404 (a removed bed cannot be priced, blocked, renamed or removed)."""
    bed = db.session.get(Bed, bed_id)
    if bed is None or bed.removed_at is not None or (bed.room.listing.host_id != actor.user_id
                                                     and not actor.is_admin):
        raise NotFound(_("Bädden finns inte."))
    return bed


def _require_host(actor: Actor) -> None:
    if actor.role != "host":
        raise Forbidden(_("Bara värdar hanterar boenden."))


def create_listing(actor: Actor, *, title, description, address, postal_code, walking_minutes,
                   now: datetime | None = None) -> Listing:
    """Create a draft listing for the acting host."""
    now = now_or(now)
    _require_host(actor)
    values = _listing_values(title, description, address, postal_code, walking_minutes)
    with unit_of_work():
        listing = Listing(host_id=actor.user_id, published=False, created_at=now, **values)
        db.session.add(listing)
        db.session.flush()
        audit.record(actor, "listing.created", "listing", listing.id, after=values, now=now)
    return listing


PLACE_FIELDS = ("address", "postal_code", "walking_minutes")


def _has_live_booking(listing_id: int, now: datetime) -> bool:
    """A booking awaiting payment or confirmed whose last night has not passed (Stockholm time)."""
    return db.session.scalar(select(Booking.id).where(
        Booking.listing_id == listing_id, Booking.status.in_(("awaiting_payment", "confirmed")),
        Booking.check_out > local_date(now)).limit(1)) is not None


def update_listing(actor: Actor, listing_id: int, *, title, description, address, postal_code, walking_minutes,
                   now: datetime | None = None) -> Listing:
    """Edit a listing's description; prices and contracts are untouched."""
    now = now_or(now)
    _require_host(actor)
    owned_listing(actor, listing_id)
    values = _listing_values(title, description, address, postal_code, walking_minutes)
    with unit_of_work():
        db.session.execute(select(Listing.id).where(Listing.id == listing_id).with_for_update())
        listing = owned_listing(actor, listing_id)
        before = {k: getattr(listing, k) for k in values}
        moved = [k for k in PLACE_FIELDS if values[k] != before[k]]
        if moved and _has_live_booking(listing_id, now):
            raise Conflict(_("Adressen, postnumret och gångtiden kan inte ändras medan annonsen har en "
                             "pågående bokning."), code="listing_has_bookings", fields=moved)
        for key, value in values.items():
            setattr(listing, key, value)
        audit.record(actor, "listing.updated", "listing", listing.id, before=before, after=values, now=now)
    return listing


def add_room(actor: Actor, listing_id: int, name: str, *, now: datetime | None = None) -> Room:
    now = now_or(now)
    _require_host(actor)
    owned_listing(actor, listing_id)
    errors: dict = {}
    name = _text(errors, "name", name, 120)
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work():
        room = Room(listing_id=listing_id, name=name)
        db.session.add(room)
        db.session.flush()
        audit.record(actor, "room.created", "room", room.id, after={"listing_id": listing_id, "name": name}, now=now)
    return room


def add_bed(actor: Actor, room_id: int, label: str, kind: str, *, now: datetime | None = None) -> Bed:
    now = now_or(now)
    _require_host(actor)
    owned_room(actor, room_id)
    errors: dict = {}
    label = _text(errors, "label", label, 120)
    if kind not in BED_KINDS:
        errors["kind"] = [_("Typen ska vara en av: %(choices)s.", choices=", ".join(BED_KINDS))]
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work():
        bed = Bed(room_id=room_id, label=label, kind=kind)
        db.session.add(bed)
        db.session.flush()
        audit.record(actor, "bed.created", "bed", bed.id, after={"room_id": room_id, "label": label, "kind": kind},
                     now=now)
    return bed


def rename_room(actor: Actor, room_id: int, name: str, *, now: datetime | None = None) -> Room:
    now = now_or(now)
    _require_host(actor)
    errors: dict = {}
    name = _text(errors, "name", name, 120)
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work():
        room = owned_room(actor, room_id)
        before, room.name = room.name, name
        audit.record(actor, "room.renamed", "room", room_id, before={"name": before}, after={"name": name}, now=now)
    return room


def rename_bed(actor: Actor, bed_id: int, label: str | None = None, kind: str | None = None, *,
               now: datetime | None = None) -> Bed:
    now = now_or(now)
    _require_host(actor)
    errors: dict = {}
    if label is not None:
        label = _text(errors, "label", label, 120)
    if kind is not None and kind not in BED_KINDS:
        errors["kind"] = [_("Typen ska vara en av: %(choices)s.", choices=", ".join(BED_KINDS))]
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work():
        bed = owned_bed(actor, bed_id)
        before = {"label": bed.label, "kind": bed.kind}
        bed.label = label if label is not None else bed.label
        bed.kind = kind if kind is not None else bed.kind
        audit.record(actor, "bed.renamed", "bed", bed_id, before=before,
                     after={"label": bed.label, "kind": bed.kind}, now=now)
    return bed


def _lock_beds(bed_ids: list[int]) -> list[Bed]:
    """The beds on offer among these, locked: a booking inserting bed-nights for one of them holds a key-share
    lock on it (the foreign key), so a removal waits for it and then sees its bed-nights."""
    if not bed_ids:
        return []
    return list(db.session.scalars(select(Bed).where(Bed.id.in_(bed_ids), Bed.removed_at.is_(None))
                                   .order_by(Bed.id).with_for_update().execution_options(populate_existing=True)))


def _check_no_live_bookings(beds: list[Bed], now: datetime) -> None:
    """409 bed_has_bookings while a booking or hold still occupies one of these beds tonight or later."""
    if not beds:
        return
    bed_id = db.session.scalar(
        select(BedNight.bed_id).outerjoin(Booking, Booking.id == BedNight.booking_id).where(
            BedNight.bed_id.in_([b.id for b in beds]), BedNight.state.in_(("held", "booked")),
            BedNight.night >= local_date(now), occupies(now)).order_by(BedNight.bed_id).limit(1))
    if bed_id is not None:
        label = next(b.label for b in beds if b.id == bed_id)
        raise Conflict(_("Bädden %(label)s har en pågående bokning och kan inte tas bort förrän vistelsen är "
                         "över eller bokningen avbokad.", label=label), code="bed_has_bookings", bed_id=bed_id)


def _has_history(bed: Bed, now: datetime) -> bool:
    """Something refers to the bed: a bed-night of any kind (bookings, holds, blocks), or a price of a season
    before the current one (the year-over-year reference)."""
    if db.session.scalar(select(BedNight.id).where(BedNight.bed_id == bed.id).limit(1)) is not None:
        return True
    season = current_season(now)
    return db.session.scalar(select(BedPrice.id).join(Season, Season.id == BedPrice.season_id).where(
        BedPrice.bed_id == bed.id, Season.year < (season.year if season else 0)).limit(1)) is not None


def _remove_bed(bed: Bed, now: datetime) -> bool:
    """Remove one locked bed (flush only): softly when it has history, which then stays as it was; return
    whether it was kept for its history."""
    if _has_history(bed, now):
        bed.removed_at = now
        return True
    db.session.execute(delete(PriceChange).where(PriceChange.bed_id == bed.id))
    db.session.execute(delete(BedPrice).where(BedPrice.bed_id == bed.id))
    db.session.delete(bed)
    return False


def remove_bed(actor: Actor, bed_id: int, *, now: datetime | None = None) -> bool:
    """Take a bed off the listing; one with history is kept out of sight (its bed-nights, contracts and prices
    stay). 409 bed_has_bookings while a booking or hold occupies it tonight or later. Returns whether the bed
    was kept for its history."""
    now = now_or(now)
    _require_host(actor)
    with unit_of_work():
        owned_bed(actor, bed_id)
        beds = _lock_beds([bed_id])
        if not beds:
            raise Conflict(_("Bädden är redan borttagen."), code="state_changed", bed_id=bed_id)
        bed = beds[0]
        _check_no_live_bookings(beds, now)
        facts = {"room_id": bed.room_id, "label": bed.label}
        kept = _remove_bed(bed, now)
        audit.record(actor, "bed.removed", "bed", bed_id, before=facts, after={"kept_for_history": kept}, now=now)
    return kept


def remove_room(actor: Actor, room_id: int, *, now: datetime | None = None) -> bool:
    """Take a room and its beds off the listing, each bed as remove_bed does; the room is kept out of sight
    when a bed of it is kept. 409 bed_has_bookings (the first such bed) and nothing changes. Returns whether
    the room was kept for its history."""
    now = now_or(now)
    _require_host(actor)
    with unit_of_work():
        owned_room(actor, room_id)
        room = db.session.scalars(select(Room).where(Room.id == room_id).with_for_update()
                                  .execution_options(populate_existing=True)).one_or_none()
        if room is None or room.removed_at is not None:
            raise Conflict(_("Rummet är redan borttaget."), code="state_changed", room_id=room_id)
        beds = _lock_beds(list(db.session.scalars(select(Bed.id).where(Bed.room_id == room_id))))
        _check_no_live_bookings(beds, now)
        removed = {bed.id: _remove_bed(bed, now) for bed in beds}
        db.session.flush()
        kept = db.session.scalar(select(Bed.id).where(Bed.room_id == room_id).limit(1)) is not None
        facts = {"listing_id": room.listing_id, "name": room.name, "beds": sorted(removed)}
        if kept:
            room.removed_at = now
        else:
            db.session.delete(room)
        audit.record(actor, "room.removed", "room", room_id, before=facts, after={"kept_for_history": kept},
                     now=now)
    return kept


def publish(actor: Actor, listing_id: int, accept_terms_version: str | None, *, now: datetime | None = None
            ) -> Listing:
    """Publish a listing: the host accepts the latest season's terms, a binding standing offer."""
    now = now_or(now)
    _require_host(actor)
    listing = owned_listing(actor, listing_id)
    assert actor.user_id is not None  # a host acts (checked above); only the system actor has no user  # nosec B101
    if not is_host_approved(actor.user_id):
        raise Forbidden(_("Bara värdar som Sängplats har godkänt kan publicera. Skicka in dina uppgifter och vänta "
                          "på granskningen."),
                        code="host_not_approved")
    season = current_season(now)
    if season is None:
        raise DomainError(_("Det finns ännu ingen säsong att publicera för."), code="no_season")
    beds = listing.beds()
    priced = set(db.session.scalars(select(BedPrice.bed_id).where(
        BedPrice.season_id == season.id, BedPrice.bed_id.in_([b.id for b in beds]))))
    unpriced = [b.id for b in beds if b.id not in priced]
    if not beds or unpriced:
        raise DomainError(
            _("Varje bädd behöver ett pris för %(year)s innan du publicerar.", year=season.year) if beds
            else _("Lägg till minst ett rum med en bädd innan du publicerar."),
            code="bed_without_price", bed_ids=unpriced, year=season.year,
        )
    if accept_terms_version != season.terms_version:
        raise DomainError(_("Godkänn standardvillkoren, version %(version)s, för att publicera.",
                            version=season.terms_version),
                          code="terms_not_accepted", terms_version=season.terms_version)
    with unit_of_work():
        listing = owned_listing(actor, listing_id)
        listing.published = True
        listing.accepted_terms_version = season.terms_version
        listing.offer_accepted_at = now
        db.session.add(OfferAcceptance(listing_id=listing.id, terms_version=season.terms_version,
                                       actor_id=actor.user_id, accepted_at=now, ip=actor.ip))
        audit.record(actor, "listing.published", "listing", listing.id,
                     after={"terms_version": season.terms_version}, now=now)
    return listing


def unpublish(actor: Actor, listing_id: int, *, now: datetime | None = None) -> Listing:
    """Hide a listing from search; existing contracts stand."""
    now = now_or(now)
    _require_host(actor)
    owned_listing(actor, listing_id)
    with unit_of_work():
        db.session.execute(select(Listing.id).where(Listing.id == listing_id).with_for_update(key_share=True))
        listing = owned_listing(actor, listing_id)
        if listing.published:
            _record_offered(listing_id, now)
        listing.published = False
        audit.record(actor, "listing.unpublished", "listing", listing.id, now=now)
    return listing


def _record_offered(listing_id: int, now: datetime) -> None:
    """The listing goes off the market: its priced beds of every season whose booking has opened have been
    on offer since the opening, so their prices stay frozen (may only fall) after it (flush only)."""
    opened = select(Season.id).where(Season.bookings_open_at <= now)
    beds = select(Bed.id).join(Room, Room.id == Bed.room_id).where(Room.listing_id == listing_id)
    db.session.execute(update(BedPrice).where(
        BedPrice.bed_id.in_(beds), BedPrice.season_id.in_(opened), BedPrice.offered_at.is_(None))
        .values(offered_at=now))


def is_publicly_visible(listing: Listing) -> bool:
    return listing.published and is_host_approved(listing.host_id)


def visible_page(offset: int, limit: int) -> tuple[list[Listing], int]:
    """One page of the publicly visible listings (published, host approved), nearest Almedalen first, and their
    count."""
    visible = (select(Listing).join(HostProfile, HostProfile.user_id == Listing.host_id)
               .where(Listing.published.is_(True), HostProfile.vetting_status == "approved"))
    total = db.session.scalar(select(func.count()).select_from(visible.subquery())) or 0
    items = db.session.scalars(visible.order_by(Listing.walking_minutes, Listing.id).offset(offset).limit(limit))
    return list(items), total


def stay_nights(check_in: date, check_out: date) -> list[date]:
    from datetime import timedelta
    return [check_in + timedelta(days=i) for i in range((check_out - check_in).days)]
