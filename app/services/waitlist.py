"""The waiting list: a coordinator waits for N beds for a stay; freed beds are offered, oldest entry first.

When a guest cancellation or an expired hold frees bed-nights of a listing, the waiting entries
whose stay overlaps them are tried oldest first: an entry that the listing can now serve (enough
beds free every night, within its walking and price limits) gets a reserved offer. The beds are
held for 48 hours by a contract-less `awaiting_payment` booking (offers.hold_beds_for_offer),
in the same transaction as the cancellation that freed them. Accepting forms the contract; an
offer left alone expires with `flask holds expire`, which frees the beds again and so offers them
to the next entry.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.labels import in_sentence
from app.models import Booking, Delegation, Season, WaitlistEntry
from app.services import audit, availability, events, hoarding
from app.services.access import locked_booking, owned_delegation
from app.services.base import Actor, local_date, now_or, unit_of_work
from app.services.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from app.services.inventory import MAX_BEDS_PER_BOOKING
from app.services.offers import confirm_offered_hold, hold_beds_for_offer, release_hold
from app.services.seasons import price_errors, season_or_404, year_errors

OFFER_HOURS = 48
ACTIVE = ("waiting", "offered")


def own_entry(actor: Actor, entry_id: int) -> WaitlistEntry:
    """An entry of the actor's own delegations (or any, for an admin); anyone else gets 404."""
    entry = db.session.get(WaitlistEntry, entry_id)
    delegation = db.session.get(Delegation, entry.delegation_id) if entry is not None else None
    if entry is None or delegation is None or (delegation.coordinator_id != actor.user_id and not actor.is_admin):
        raise NotFound(_("Anmälan till väntelistan finns inte."))
    return entry


def entries_for(actor: Actor) -> list[WaitlistEntry]:
    """The coordinator's entries across their delegations, newest first."""
    return list(db.session.scalars(
        select(WaitlistEntry).join(Delegation, Delegation.id == WaitlistEntry.delegation_id)
        .where(Delegation.coordinator_id == actor.user_id).order_by(WaitlistEntry.id.desc())))


def _check_limits(year, beds, max_walking_minutes, max_price_ore) -> None:
    errors: dict[str, list[str]] = {}
    if year_errors(year):
        errors["year"] = year_errors(year)
    if not isinstance(beds, int) or isinstance(beds, bool) or not 1 <= beds <= MAX_BEDS_PER_BOOKING:
        errors["beds"] = [_("Mellan 1 och %(max)s bäddar (ett boende, en bokning).",
                            max=MAX_BEDS_PER_BOOKING)]
    if max_walking_minutes is not None and not 0 <= max_walking_minutes <= 600:
        errors["max_walking_minutes"] = [_("Mellan 0 och 600 minuter, eller lämna tomt.")]
    if max_price_ore is not None and price_errors(max_price_ore):
        errors["max_price_ore"] = price_errors(max_price_ore)
    if errors:
        raise ValidationFailed(errors)


def join(actor: Actor, *, delegation_id: int, year: int, check_in: date, check_out: date, beds: int,
         max_walking_minutes: int | None = None, max_price_ore: int | None = None,
         now: datetime | None = None) -> WaitlistEntry:
    """Put a delegation on the waiting list for `beds` beds of one listing for a stay."""
    now = now_or(now)
    if actor.role != "coordinator":
        raise Forbidden(_("Bara delegationers samordnare ställer sig i väntelistan."))
    owned_delegation(actor, delegation_id)
    _check_limits(year, beds, max_walking_minutes, max_price_ore)
    season = season_or_404(year)
    availability.check_stay(season, check_in, check_out)
    availability.check_not_past(check_in, now)
    if check_in <= local_date(now):
        raise DomainError(_("Vistelsen har redan börjat; välj en senare incheckning."), code="stay_started")
    if not season.is_open(now):
        raise DomainError(_("Bokningen för %(year)s har inte öppnat än; väntelistan är till för när bäddarna är "
                            "slut.", year=season.year), code="not_open")
    free = availability.search(year, check_in, check_out, beds, max_walking_minutes=max_walking_minutes,
                               max_price_ore=max_price_ore, now=now)
    if free:
        raise Conflict(ngettext("%(num)s boende har %(beds)s lediga bäddar för vistelsen just nu: boka dem i "
                                "stället för att vänta.",
                                "%(num)s boenden har %(beds)s lediga bäddar för vistelsen just nu: boka dem i "
                                "stället för att vänta.", len(free), beds=beds),
                       code="beds_available", listings=[r.listing_id for r in free[:20]])
    with unit_of_work():
        duplicate = db.session.scalar(select(WaitlistEntry.id).where(
            WaitlistEntry.delegation_id == delegation_id, WaitlistEntry.check_in == check_in,
            WaitlistEntry.check_out == check_out, WaitlistEntry.status.in_(ACTIVE)))
        if duplicate is not None:
            raise Conflict(_("Delegationen väntar redan på den här vistelsen; avbryt den anmälan för att ändra den."),
                           code="already_waiting", entry_id=duplicate)
        entry = add_entry(actor, delegation_id=delegation_id, season_id=season.id, check_in=check_in,
                          check_out=check_out, beds=beds, max_walking_minutes=max_walking_minutes,
                          max_price_ore=max_price_ore, now=now)
    return entry


def add_entry(actor: Actor, *, delegation_id: int, season_id: int, check_in: date, check_out: date, beds: int,
              max_walking_minutes: int | None, max_price_ore: int | None, now: datetime) -> WaitlistEntry:
    """Inside the caller's unit of work (flush only): a waiting entry, at the back of the queue.

    `join` adds one for a coordinator after its checks; the allocation draw adds one for each request it could not
    serve (its stay and beds, its walking and price limits), before bookings open."""
    entry = WaitlistEntry(delegation_id=delegation_id, season_id=season_id, check_in=check_in,
                          check_out=check_out, beds=beds, max_walking_minutes=max_walking_minutes,
                          max_price_ore=max_price_ore, status="waiting", created_at=now)
    db.session.add(entry)
    db.session.flush()
    audit.record(actor, "waitlist.joined", "waitlist_entry", entry.id,
                 after={"delegation_id": delegation_id, "check_in": check_in, "check_out": check_out,
                        "beds": beds, "max_walking_minutes": max_walking_minutes,
                        "max_price_ore": max_price_ore}, now=now)
    return entry


def place_in_queue(entry: WaitlistEntry) -> int:
    """The entry's place among the season's waiting entries, oldest first (1: next to be offered beds)."""
    return db.session.scalar(select(func.count(WaitlistEntry.id)).where(
        WaitlistEntry.season_id == entry.season_id, WaitlistEntry.status == "waiting",
        or_(WaitlistEntry.created_at < entry.created_at,
            and_(WaitlistEntry.created_at == entry.created_at, WaitlistEntry.id <= entry.id)))) or 0


def _locked_entry(entry_id: int) -> WaitlistEntry:
    """The entry row, re-read and locked for this unit of work (PostgreSQL; SQLite is already serialised)."""
    return db.session.scalars(select(WaitlistEntry).where(WaitlistEntry.id == entry_id).with_for_update()
                              .execution_options(populate_existing=True)).one()


def _lock_entry_and_offer(entry_id: int, offer_booking_id: int | None) -> tuple[WaitlistEntry, Booking | None]:
    """Lock the offer's booking, then the entry: the order the expiry job and a cancellation of the booking
    take them in (booking, then its entry), so that no two of them deadlock. The entry's offer is the one
    read before the lock; an offer made meanwhile is a change of state the caller did not see."""
    booking = locked_booking(offer_booking_id) if offer_booking_id is not None else None
    entry = _locked_entry(entry_id)
    if entry.offer_booking_id != offer_booking_id:
        raise _state_changed(entry)
    return entry, booking


def _state_changed(entry: WaitlistEntry) -> Conflict:
    return Conflict(_("Anmälan ändrades nyss och är nu %(status)s; ladda om sidan.",
                      status=in_sentence("waitlist_status", entry.status)),
                    code="state_changed", status_now=entry.status)


def cancel(actor: Actor, entry_id: int, *, now: datetime | None = None) -> WaitlistEntry:
    """Leave the waiting list; a pending offer is declined and its beds go to the next entry.

    One atomic step under the row locks: of a cancel racing an acceptance or the offer's lapse exactly
    one wins; a cancel that loses answers 409 `state_changed` (a second cancel `not_cancellable`)."""
    now = now_or(now)
    offer_booking_id = own_entry(actor, entry_id).offer_booking_id
    with unit_of_work():
        entry, booking = _lock_entry_and_offer(entry_id, offer_booking_id)
        if entry.status == "cancelled":
            raise Conflict(_("Anmälan är redan avbruten."), code="not_cancellable", status_now=entry.status)
        if entry.status not in ACTIVE:
            raise _state_changed(entry)
        before = entry.status
        entry.status = "cancelled"
        audit.record(actor, "waitlist.cancelled", "waitlist_entry", entry.id, before={"status": before},
                     after={"status": "cancelled"}, now=now)
        if booking is not None and before == "offered":
            release_hold(booking, now=now, actor=actor)  # emits booking.expired: next entry
    return entry


def accept_offer(actor: Actor, entry_id: int, *, accept_contract: bool,
                 now: datetime | None = None) -> Booking:
    """Accept a reserved offer: the binding contract is formed and the beds are booked on invoice."""
    now = now_or(now)
    if actor.role != "coordinator":
        raise Forbidden(_("Bara delegationers samordnare tar emot erbjudanden."))
    offer_booking_id = own_entry(actor, entry_id).offer_booking_id
    if accept_contract is not True:
        raise DomainError(_("Du måste godkänna det bindande avtalet för att boka."), code="contract_not_accepted")
    with unit_of_work():
        # Under the row locks, so that the offer's lapse or a cancel racing this acceptance either
        # waits for it or has already won (then this one answers 409 state_changed).
        entry, booking = _lock_entry_and_offer(entry_id, offer_booking_id)
        if entry.status == "waiting":
            raise Conflict(_("Anmälan är %(status)s; det finns inget erbjudande att ta emot.",
                             status=in_sentence("waitlist_status", entry.status)), code="no_offer",
                           status_now=entry.status)
        if entry.status != "offered" or booking is None:
            raise _state_changed(entry)
        confirm_offered_hold(actor, booking, now=now)
        entry.status = "booked"
        audit.record(actor, "waitlist.booked", "waitlist_entry", entry.id, after={"booking_id": booking.id},
                     now=now)
    return booking


# ---------------------------------------------------------------------------------------------
# Offers, made inside the unit of work that freed the beds (event handlers: flush only)
# ---------------------------------------------------------------------------------------------


def _close_offer_of(booking: Booking, status: str, now: datetime) -> None:
    # The caller holds the booking's lock; the entry is locked after it (see _lock_entry_and_offer).
    entry = db.session.scalars(select(WaitlistEntry).where(
        WaitlistEntry.offer_booking_id == booking.id, WaitlistEntry.status == "offered")
        .with_for_update().execution_options(populate_existing=True)).one_or_none()
    if entry is not None:
        entry.status = status
        audit.record(Actor.system(), f"waitlist.offer_{status}", "waitlist_entry", entry.id,
                     after={"booking_id": booking.id}, now=now)


def _beds_for(entry: WaitlistEntry, listing_id: int, now: datetime) -> dict[int, int] | None:
    """The cheapest beds of this listing that serve the entry now, as {bed_id: price_ore}, or None."""
    season = db.session.get_one(Season, entry.season_id)
    results = availability.search(season.year, entry.check_in, entry.check_out, entry.beds,
                                  max_walking_minutes=entry.max_walking_minutes, max_price_ore=entry.max_price_ore,
                                  now=now, listing_id=listing_id)
    if not results:
        return None
    candidates = results[0].free_beds
    # Search counts a hold past its time as free, but its rows stand until `holds expire` ends it.
    stale = {bed_id for bed_id, _ in availability.taken_bed_nights(
        [b.bed_id for b in candidates], entry.check_in, entry.check_out)}
    usable = [b for b in candidates if b.bed_id not in stale][:entry.beds]
    if len(usable) < entry.beds:
        return None
    return {b.bed_id: b.price_ore for b in usable}


def _make_offer(entry: WaitlistEntry, listing_id: int, prices: dict[int, int], now: datetime) -> bool:
    season = db.session.get(Season, entry.season_id)
    delegation = db.session.get_one(Delegation, entry.delegation_id)
    expires_at = now + timedelta(hours=OFFER_HOURS)
    try:
        # A savepoint: losing a race for a bed must not undo the cancellation that freed the beds.
        with db.session.begin_nested():
            booking = hold_beds_for_offer(delegation, listing_id, season, prices, entry.check_in,
                                                          entry.check_out, expires_at=expires_at, now=now)
    except (IntegrityError, Conflict):  # a bed taken, or removed by its host, since the search
        return False
    except DomainError as refusal:
        if refusal.code != hoarding.LIMIT_CODE:
            raise
        return False  # the organisation holds all it may: the beds go to the next entry, this one keeps waiting
    entry.status = "offered"
    entry.offer_booking_id = booking.id
    entry.offer_expires_at = expires_at
    audit.record(Actor.system(), "waitlist.offered", "waitlist_entry", entry.id,
                 after={"booking_id": booking.id, "expires_at": expires_at}, now=now)
    events.emit(events.WAITLIST_OFFERED, entry=entry, booking=booking, now=now)
    return True


def offer_freed_beds(booking: Booking, now: datetime) -> list[int]:
    """Offer the beds this booking freed to the waiting entries it can now serve, oldest first."""
    today = local_date(now)
    offered = []
    # Locked (in one order: oldest first) and re-checked, so that an entry cancelled meanwhile gets no offer.
    entries = db.session.scalars(select(WaitlistEntry).where(
        WaitlistEntry.status == "waiting", WaitlistEntry.season_id == booking.season_id,
        WaitlistEntry.check_in < booking.check_out, WaitlistEntry.check_out > booking.check_in,
    ).order_by(WaitlistEntry.created_at, WaitlistEntry.id).with_for_update()
        .execution_options(populate_existing=True)).all()
    for entry in entries:
        if entry.check_in <= today:
            entry.status = "expired"  # the stay has begun: nothing can be offered any more
            continue
        prices = _beds_for(entry, booking.listing_id, now)
        if prices and _make_offer(entry, booking.listing_id, prices, now):
            offered.append(entry.id)
    return offered


def _on_cancelled_by_guest(booking: Booking, now: datetime, **_) -> None:
    _close_offer_of(booking, "cancelled", now)
    offer_freed_beds(booking, now)


def _on_lines_cancelled(booking: Booking, now: datetime, **_) -> None:
    # The booking stands (no offer of it to close); the bed-nights it gave up may serve a waiting entry.
    offer_freed_beds(booking, now)


def _on_expired(booking: Booking, now: datetime, **_) -> None:
    _close_offer_of(booking, "expired", now)
    offer_freed_beds(booking, now)


def register() -> None:
    """Subscribe the waiting list to the events that free beds (idempotent)."""
    events.subscribe(events.BOOKING_CANCELLED_BY_GUEST, _on_cancelled_by_guest)
    events.subscribe(events.BOOKING_LINES_CANCELLED, _on_lines_cancelled)
    events.subscribe(events.BOOKING_EXPIRED, _on_expired)
