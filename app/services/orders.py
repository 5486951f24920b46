"""Orders: one binding step over several hosts (API.md "Orders: one step, several hosts").

An order is one booking and one contract per listing, all formed in one unit of work or none, with
the same checks, locks and prices as a single booking (`booking.prepare_part` .. `seal_booking`).
Under the write lock the parts are taken in listing-id order, and every part's bed-nights are inserted
before any counter (invoice, contract number) is taken, so two overlapping orders, or an order and a
single booking, wait for each other in one order and never deadlock.

`create_order` is the coordinator's door; `form_order` is the flush-only step it shares with the allocation draw,
which forms an order for a request's coordinator at the draw (its card holds lasting the season's
allocation_payment_hours, before bookings open: `order_stay(..., by_draw=True)`).

Card orders are paid with one card entry: one PaymentMethod, charged as one PaymentIntent per booking
(`pay_order`), so that each booking keeps its own payment and a refund of one booking works as for any
booking.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Booking, Order, Season
from app.services import audit, payments, stripe_gateway
from app.services.access import owned_delegation
from app.services.availability import check_not_past, check_stay
from app.services.base import Actor, now_or, unit_of_work
from app.services.booking import (
    PAYMENT_METHODS,
    Part,
    Quote,
    Stay,
    insert_booking,
    lock_terms,
    prepare_part,
    quote_booking,
    seal_booking,
    taken_or_removed,
)
from app.services.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from app.services.hoarding import enforce_organisation_limits
from app.services.inventory import (
    MAX_BEDS_PER_BOOKING,
    conflict_error,
    no_season_error,
    occupants,
    release_expired_holds,
)
from app.services.listings import stay_nights
from app.services.seasons import season_for_stay

MAX_PARTS = 10


def _check_parts(parts, errors: dict[str, list[str]]) -> None:
    """Shape only: 1..MAX_PARTS parts, each a list of distinct bed ids."""
    if not isinstance(parts, list) or not parts or len(parts) > MAX_PARTS:
        errors["parts"] = [_("Ange mellan 1 och %(max)s delar, var och en med sina bädd-id:n.", max=MAX_PARTS)]
        return
    for i, part in enumerate(parts):
        bed_ids = part.get("bed_ids") if isinstance(part, dict) else None
        if (not isinstance(bed_ids, list) or not bed_ids
                or not all(isinstance(b, int) and not isinstance(b, bool) for b in bed_ids)):
            errors[f"parts[{i}].bed_ids"] = [_("Ange en lista med bädd-id:n.")]
        elif len(set(bed_ids)) != len(bed_ids):
            errors[f"parts[{i}].bed_ids"] = [_("Varje bädd får bara finnas med en gång.")]
        elif len(bed_ids) > MAX_BEDS_PER_BOOKING:
            errors[f"parts[{i}].bed_ids"] = [_("Högst %(max)s bäddar i en bokning.", max=MAX_BEDS_PER_BOOKING)]


def _check_request(parts, payment_method) -> list[list[int]]:
    """Shape only: the parts (above) and a known payment method."""
    errors: dict[str, list[str]] = {}
    _check_parts(parts, errors)
    if payment_method not in PAYMENT_METHODS:
        errors["payment_method"] = [_("Välj 'invoice' (faktura) eller 'card' (kort).")]
    if errors:
        raise ValidationFailed(errors)
    return _bed_lists(parts)


def _bed_lists(parts) -> list[list[int]]:
    """Each part's bed ids, sorted; a bed in two parts is refused (both parts would be in its listing)."""
    bed_lists = [sorted(part["bed_ids"]) for part in parts]
    all_beds = [bed_id for bed_ids in bed_lists for bed_id in bed_ids]
    if len(set(all_beds)) != len(all_beds):
        raise _parts_share_listing()
    return bed_lists


def _parts_share_listing() -> DomainError:
    return DomainError(_("Två delar av beställningen gäller samma boende. Lägg alla bäddar i ett boende i samma "
                         "del (en bokning och ett avtal per boende)."), code="parts_share_listing")


def create_order(actor: Actor, *, delegation_id: int, check_in: date, check_out: date, parts,
                 accept_contract: bool, payment_method: str, now: datetime | None = None) -> Order:
    """Book several listings' beds for one stay in one step: one booking and contract per part, all or none."""
    now = now_or(now)
    if actor.role != "coordinator":
        raise Forbidden(_("Bara delegationers samordnare bokar bäddar."))
    owned_delegation(actor, delegation_id)
    bed_lists = _check_request(parts, payment_method)
    all_beds = [bed_id for bed_ids in bed_lists for bed_id in bed_ids]
    season = season_for_stay(check_in)
    if season is None:
        raise no_season_error(check_in.year)
    check_stay(season, check_in, check_out)
    check_not_past(check_in, now)
    if accept_contract is not True:
        raise DomainError(_("Du måste godkänna det bindande avtalet för att boka."), code="contract_not_accepted")
    prepared = [prepare_part(actor, season, delegation_id, bed_ids, check_in, check_out, now) for bed_ids in bed_lists]
    if len({part.listing_id for part in prepared}) != len(prepared):
        raise _parts_share_listing()
    # One order for every locker: parts by listing id (and within a part, nights then beds, as a booking does).
    prepared.sort(key=lambda part: part.listing_id)
    # Refuse what is visibly taken before asking for the write lock, listing the conflicts of every part.
    taken, stale = [], []
    for part in prepared:
        part_taken, part_stale = occupants(part.bed_ids, check_in, check_out, now)
        taken += part_taken
        stale += part_stale
    if taken and not stale:
        raise conflict_error(taken)
    stay = order_stay(season, delegation_id, check_in, check_out, payment_method, now,
                      hold=timedelta(minutes=season.hold_minutes))
    try:
        with unit_of_work():
            order = form_order(actor, prepared, stay, now)
    except IntegrityError:
        raise taken_or_removed(all_beds, check_in, check_out) from None
    return order


def order_stay(season: Season, delegation_id: int, check_in: date, check_out: date, payment_method: str,
               now: datetime, *, hold: timedelta, by_draw: bool = False) -> Stay:
    """What every booking of an order shares; a card order's holds last `hold` from `now` (the season's
    hold_minutes for an order a coordinator makes, its allocation_payment_hours for one the draw forms)."""
    return Stay(delegation_id, season.id, season.year, check_in, check_out, stay_nights(check_in, check_out),
                payment_method, now + hold if payment_method == "card" else None, by_draw)


def form_order(actor: Actor, prepared: list[Part], stay: Stay, now: datetime) -> Order:
    """Inside the caller's unit of work (flush only): form the order of these prepared parts, all or none.

    Under the write lock: each part's terms re-read and locked (season, listing, beds, prices; parts in listing-id
    order), lapsed holds on its bed-nights released, the organisation's limits checked for the whole order (its
    bed-nights and one card hold), then every part's bed-nights inserted (the UNIQUE index decides: an
    IntegrityError leaves the caller to roll back) before any counter is taken. `actor` is the coordinator the
    order is for (the draw forms it for the request's coordinator)."""
    parts = sorted(prepared, key=lambda part: part.listing_id)
    locked = [lock_terms(part, stay, now) for part in parts]
    taken: list[tuple[int, date]] = []
    for part in locked:
        taken += release_expired_holds(part.bed_ids, stay.check_in, stay.check_out, now)
    if taken:
        raise conflict_error(taken)
    # The whole order counts against the organisation's limits: its bed-nights, and one card hold. Checked before
    # anything of the order is written, so a refusal leaves the caller's transaction as it was but for lapsed holds
    # released above (the allocation draw goes on with the request unallocated).
    beds = sum(len(part.bed_ids) for part in locked)
    enforce_organisation_limits(stay.delegation_id, stay.season_id, bed_nights=beds * len(stay.nights),
                                card_hold=stay.is_card, now=now)
    order = Order(delegation_id=stay.delegation_id, coordinator_id=actor.user_id,
                  status="awaiting_payment" if stay.is_card else "confirmed",
                  total_ore=sum(part.total_ore for part in locked) * len(stay.nights), created_at=now)
    db.session.add(order)
    db.session.flush()
    # Every part's bed-nights first (the UNIQUE index decides), then the counters of each part.
    formed = [(insert_booking(actor, part, stay, now, order_id=order.id), part) for part in locked]
    for booking, part in formed:
        seal_booking(actor, booking, part, stay, now)
    audit.record(actor, "order.created", "order", order.id,
                 after={"booking_ids": [booking.id for booking, _part in formed], "check_in": stay.check_in,
                        "check_out": stay.check_out, "total_ore": order.total_ore, "status": order.status},
                 now=now)
    return order


def quote_order(parts, check_in: date, check_out: date, *, now: datetime | None = None) -> list[Quote]:
    """What an order of these parts would be now, for the review page: each part quoted under the booking rules,
    and the order's own shape (one listing per part, no listing twice), without booking anything."""
    errors: dict[str, list[str]] = {}
    _check_parts(parts, errors)
    if errors:
        raise ValidationFailed(errors)
    quotes = [quote_booking(bed_ids, check_in, check_out, now=now) for bed_ids in _bed_lists(parts)]
    if len({quote.listing.id for quote in quotes}) != len(quotes):
        raise _parts_share_listing()
    return quotes


def visible_order(actor: Actor, order_id: int) -> Order:
    """An order its coordinator or an admin may see; anyone else gets 404."""
    order = db.session.get(Order, order_id)
    if order is None or not (actor.is_admin or order.coordinator_id == actor.user_id):
        raise NotFound(_("Beställningen finns inte."))
    return order


def order_status(order: Order) -> str:
    """What the order is now, from its bookings: awaiting_payment while any card hold is unpaid, confirmed when
    all are confirmed (or completed), cancelled when none is live, else partly_cancelled."""
    statuses = [booking.status for booking in order.bookings]
    if "awaiting_payment" in statuses:
        return "awaiting_payment"
    live = [status for status in statuses if status in ("confirmed", "completed")]
    if len(live) == len(statuses):
        return "confirmed"
    return "partly_cancelled" if live else "cancelled"


def due_card_bookings(order: Order) -> list[Booking]:
    """The order's card bookings still to pay (awaiting payment, or a lapsed hold that may be paid again)."""
    return [booking for booking in order.bookings
            if booking.payment_method == "card" and booking.status in ("awaiting_payment", "expired")]


def _payable_bookings(order: Order) -> list[Booking]:
    """The bookings one card entry pays now; refused for an invoice order and for one already paid."""
    if all(booking.payment_method != "card" for booking in order.bookings):
        raise Conflict(_("Den här beställningen betalas mot faktura, inte med kort."), code="not_card")
    due = due_card_bookings(order)
    if not due:
        raise Conflict(_("Beställningen är redan betald."), code="already_paid", status_now=order_status(order))
    return due


def _own_order(actor: Actor, order_id: int) -> Order:
    """The acting coordinator's own order (an admin sees it, but does not pay for it)."""
    order = visible_order(actor, order_id)
    if order.coordinator_id != actor.user_id:
        raise Forbidden(_("Bara beställningens samordnare betalar för den."))
    return order


def setup_card_entry(actor: Actor, order_id: int, *, now: datetime | None = None) -> str:
    """A SetupIntent for the order's pay page: Stripe.js turns the one card entry into a PaymentMethod with it."""
    now = now_or(now)
    order = _own_order(actor, order_id)
    for booking in _payable_bookings(order):
        payments.check_payable(booking, now)
    db.session.commit()
    try:
        return stripe_gateway.create_setup_intent(order_id=order_id)
    except stripe_gateway.StripeError:
        raise DomainError(_("Kortbetalning går inte just nu; försök igen om några minuter."),
                          code="stripe_unavailable", status=503) from None


def sync_order(actor: Actor, order_id: int, *, now: datetime | None = None) -> None:
    """Re-fetch the open PaymentIntents of the order's card bookings from Stripe and apply them (the order page's
    second trigger, beside the webhook)."""
    order = visible_order(actor, order_id)
    for booking_id in [booking.id for booking in order.bookings if booking.payment_method == "card"]:
        payments.sync_booking(booking_id, now=now)


def pay_order(actor: Actor, order_id: int, payment_method_id, *, now: datetime | None = None
              ) -> tuple[list[tuple[int, payments.PaymentResult]], str]:
    """Pay every unpaid card booking of the order with one PaymentMethod: one PaymentIntent per booking.

    Returns ([(booking_id, result)], "succeeded" or "requires_action"). A decline stops at that booking: what
    was paid stays paid (with `paid_booking_ids` in the error), and paying again charges only the rest."""
    now = now_or(now)
    order = _own_order(actor, order_id)
    due = [booking.id for booking in _payable_bookings(order)]
    results: list[tuple[int, payments.PaymentResult]] = []
    for booking_id in due:
        try:
            results.append((booking_id, payments.pay_booking(actor, booking_id, payment_method_id, now=now)))
        except DomainError as error:
            if not results:
                raise
            paid = [paid_id for paid_id, _result in results]
            partial = DomainError(_("%(message)s Bokningarna %(paid)s i beställningen är betalda; betala igen "
                                    "för resten.", message=error.message, paid=", ".join(map(str, paid))),
                                  code=error.code, status=error.status, **{**error.facts, "paid_booking_ids": paid})
            partial.title = error.title
            raise partial from None
    succeeded = all(result.status == "succeeded" for _booking_id, result in results)
    with unit_of_work():
        audit.record(actor, "order.payment", "order", order_id,
                     after={"booking_ids": [booking_id for booking_id, _result in results],
                            "status": "succeeded" if succeeded else "requires_action"}, now=now)
    return results, "succeeded" if succeeded else "requires_action"


__all__ = ["MAX_PARTS", "create_order", "due_card_bookings", "form_order", "order_stay", "order_status",
           "pay_order", "quote_order", "setup_card_entry", "sync_order", "visible_order"]
