"""Cancellations: a guest under the contract's terms (the whole booking, or some of its bed-nights, recorded as an
amendment beside the contract), a host in breach (strike, flag, full refund).

The money comes from the ledger; the refund rows it writes are sent to Stripe after commit.

Amendments. The contract never changes; a guest cancelling some bed-nights appends an `Amendment` (its own
number "<contract number>-A<n>", the lines, the refund and the credit). A cancellation of everything that
remains (without `lines`, or with exactly the remaining lines) is the full guest cancellation, status
`cancelled_by_guest`; it is recorded as an amendment too when the booking already has amendments, so that the
series accounts for every bed-night and öre of an amended contract. A booking cancelled whole at once keeps no
amendment: its status says it all (and its contract verifies as not amended).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, cast

from flask_babel import gettext as _
from sqlalchemy import select, update

from app.extensions import db
from app.i18n import local_date as local_date_text
from app.labels import in_sentence
from app.models import LIVE_LINE_STATES, Amendment, BedNight, Booking
from app.services import audit, events, refunds, rehousing
from app.services.access import locked_booking, visible_booking
from app.services.availability import check_not_past
from app.services.base import Actor, local_date, now_or, unit_of_work
from app.services.contracts import add_amendment, is_amended, snapshot_of
from app.services.errors import Conflict, Forbidden, ValidationFailed
from app.services.flags import add_system_flag
from app.services.inventory import CANCELLABLE
from app.services.ledger import (
    add_refund,
    guest_cancellation_ore,
    host_cancellation_ore,
    latest_captured_payment,
    lines_cancellation_ore,
)
from app.services.offers import is_offer
from app.services.text import clean_text
from app.services.vetting import add_strike

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

MAX_LINES = 2000  # a booking holds at most 100 beds for a season's nights; more lines than this are no booking's


@dataclass(frozen=True)
class GuestCancellation:
    """What one guest cancellation did: the booking after it, this cancellation's money and bed-nights."""

    booking: Booking
    refund_ore: int  # card money paid back by this cancellation
    invoice_credit_ore: int  # taken off the unpaid invoice by this cancellation
    lines: list[dict]  # the bed-nights cancelled: [{bed_id, bed, night, price_ore}] in (night, bed) order
    amendment: Amendment | None


def _queue_refund(booking: Booking, amount_ore: int, reason: str, now: datetime) -> None:
    """Record a card refund to be sent to Stripe after commit (the refunds table is its outbox)."""
    if booking.payment_method != "card" or amount_ore <= 0:
        return
    payment = latest_captured_payment(booking.id)
    add_refund(booking.id, payment.id if payment else None, amount_ore, reason, now)


def _not_cancellable(booking: Booking) -> Conflict:
    return Conflict(_("Bokningen är %(status)s och kan inte avbokas.",
                      status=in_sentence("booking_status", booking.status)),
                    code="not_cancellable", status_now=booking.status)


def _lines_changed() -> Conflict:
    """409 state_changed: another cancellation took some of these bed-nights after they were checked."""
    return Conflict(_("Några av bäddnätterna avbokades just av någon annan; titta på bokningen igen."),
                    code="state_changed")


def _coordinator_only(actor: Actor, booking_id: int) -> Booking:
    booking = visible_booking(actor, booking_id)
    if booking.coordinator_id != actor.user_id:
        raise Forbidden(_("Bara bokningens samordnare kan avboka den på det här sättet."))
    return booking


def _live_lines(booking_id: int) -> list[BedNight]:
    return list(db.session.scalars(select(BedNight).where(
        BedNight.booking_id == booking_id, BedNight.state.in_(LIVE_LINE_STATES))
        .order_by(BedNight.night, BedNight.bed_id).execution_options(populate_existing=True)))


def _line_dicts(booking: Booking, lines: list[BedNight]) -> list[dict]:
    """The contract's own lines for these bed-nights, in (night, bed) order (a hold without a contract, or a line
    the contract does not name: the bed-night's own price, which the contract copied)."""
    named = ({(line["bed_id"], line["night"]): line for line in snapshot_of(booking.contract)["lines"]}
             if booking.contract is not None else {})
    return [named.get((line.bed_id, line.night.isoformat())) or {
        "bed_id": line.bed_id, "bed": None, "night": line.night.isoformat(), "price_ore": line.price_ore or 0}
        for line in sorted(lines, key=lambda line: (line.night, line.bed_id))]


def _cancel_whole(actor: Actor, booking: Booking, now: datetime) -> GuestCancellation:
    """Cancel everything that remains of a locked booking under the terms (flush only): `cancelled_by_guest`."""
    live = _live_lines(booking.id)
    refund, credit = guest_cancellation_ore(booking, local_date(now))
    lines = _line_dicts(booking, live)
    amendment = None
    if booking.contract is not None and is_amended(booking.contract.id) and lines:
        amendment = add_amendment(booking.contract, kind="guest_cancellation", lines=lines, refund_ore=refund,
                                  invoice_credit_ore=credit, actor_id=actor.user_id, now=now)
    _queue_refund(booking, refund, "guest_cancellation", now)
    before = booking.status
    booking.status = "cancelled_by_guest"
    booking.cancelled_at = now
    # Added to what earlier partial cancellations refunded and credited (the booking's row is locked).
    booking.refund_ore = (booking.refund_ore or 0) + refund
    booking.invoice_credited_ore = (booking.invoice_credited_ore or 0) + credit
    db.session.execute(update(BedNight).where(
        BedNight.booking_id == booking.id, BedNight.state.in_(LIVE_LINE_STATES))
        .values(state="released", released_at=now))
    audit.record(actor, "booking.cancelled_by_guest", "booking", booking.id, before={"status": before},
                 after={"status": booking.status, "refund_ore": refund, "invoice_credited_ore": credit,
                        "amendment": amendment.number if amendment else None}, now=now)
    events.emit(events.BOOKING_CANCELLED_BY_GUEST, booking=booking, now=now, refund_ore=refund, credit_ore=credit)
    return GuestCancellation(booking, refund, credit, lines, amendment)


def cancel_by_guest(actor: Actor, booking_id: int, *, now: datetime | None = None) -> Booking:
    """The coordinator cancels the whole booking under the contract's terms; the bed-nights are freed."""
    now = now_or(now)
    _coordinator_only(actor, booking_id)
    with unit_of_work():
        booking = locked_booking(booking_id)
        if booking.status not in CANCELLABLE:
            raise _not_cancellable(booking)
        _cancel_whole(actor, booking, now)
    refunds.after_cancellation(booking_id)
    return booking


def _line_name(bed_id: int, night: date) -> str:
    """ "Bädd 12 natten 21 juni 2027", for the start of a sentence."""
    text = _("bädd %(bed)s natten %(night)s", bed=bed_id, night=local_date_text(night, "d MMM y"))
    return text[:1].upper() + text[1:]


def _check_lines(booking: Booking, wanted: list[tuple[int, date]], now: datetime) -> None:
    """Refuse, with what to do about it, lines that are not live bed-nights of this booking (422)."""
    states = dict(((bed_id, night), state) for bed_id, night, state in db.session.execute(
        select(BedNight.bed_id, BedNight.night, BedNight.state).where(BedNight.booking_id == booking.id)))
    errors = []
    for bed_id, night in wanted:
        state = states.get((bed_id, night))
        if state is None or state not in LIVE_LINE_STATES + ("released",):
            errors.append(_("%(line)s ingår inte i bokningen; välj bland bokningens bäddnätter.",
                            line=_line_name(bed_id, night)))
        elif state == "released":
            errors.append(_("%(line)s är redan avbokad; ta bort den ur listan.",
                            line=_line_name(bed_id, night)))
    if errors:
        raise ValidationFailed({"lines": errors})
    check_not_past(min(night for _bed, night in wanted), now)


def _check_shape(lines: Sequence[tuple[int, date]]) -> list[tuple[int, date]]:
    wanted = [(int(bed_id), night) for bed_id, night in lines]
    if not wanted:
        raise ValidationFailed({"lines": [
            _("Välj minst en bäddnatt att avboka, eller avboka hela bokningen.")]})
    if len(wanted) > MAX_LINES:
        raise ValidationFailed({"lines": [_("Högst %(max)s bäddnätter på en gång.", max=MAX_LINES)]})
    seen: set[tuple[int, date]] = set()
    twice = []
    for key in wanted:
        if key in seen:
            twice.append(_("%(line)s står mer än en gång; ange varje bäddnatt en gång.",
                           line=_line_name(*key)))
        seen.add(key)
    if twice:
        raise ValidationFailed({"lines": twice})
    return wanted


def cancel_lines(actor: Actor, booking_id: int, lines: Sequence[tuple[int, date]] | None, *,
                 now: datetime | None = None) -> GuestCancellation:
    """The coordinator cancels some bed-nights under the contract's terms: they are freed, the terms' share of
    their contract price is refunded (card money received) or credited (an unpaid invoice), and an amendment is
    appended beside the contract. Without lines, or with every remaining one, it is the full cancellation."""
    now = now_or(now)
    booking = _coordinator_only(actor, booking_id)
    wanted = None if lines is None else _check_shape(lines)
    if booking.status not in CANCELLABLE:
        raise _not_cancellable(booking)
    if wanted is not None:
        _check_lines(booking, wanted, now)
    with unit_of_work():
        booking = locked_booking(booking_id)
        if booking.status not in CANCELLABLE:
            raise _not_cancellable(booking)
        live = _live_lines(booking.id)
        by_key = {(line.bed_id, line.night): line for line in live}
        if wanted is not None and any(key not in by_key for key in wanted):
            raise _lines_changed()  # live when checked above: another cancellation took them since
        if wanted is None or len(wanted) == len(live):
            result = _cancel_whole(actor, booking, now)
        else:
            result = _cancel_some(actor, booking, [by_key[key] for key in wanted], now)
    refunds.after_cancellation(booking_id)
    return result


def _cancel_some(actor: Actor, booking: Booking, chosen: list[BedNight], now: datetime) -> GuestCancellation:
    """Cancel some of a locked, live booking's bed-nights and append the amendment (flush only)."""
    if booking.status != "confirmed" or booking.contract is None:
        raise Conflict(_("En obetald bokning avbokas i sin helhet: betala den först, eller avboka alla dess "
                         "bäddnätter."), code="not_cancellable", status_now=booking.status)
    lines = _line_dicts(booking, chosen)
    lines_ore = sum(line["price_ore"] for line in lines)
    unseated = {line.member_id for line in chosen if line.member_id is not None}  # their itineraries change
    refund, credit = lines_cancellation_ore(booking, lines_ore, local_date(now))
    # The row count decides (as a compare-and-set would): every chosen bed-night must still be live here.
    freed = cast("CursorResult[Any]", db.session.execute(update(BedNight).where(
        BedNight.id.in_([line.id for line in chosen]), BedNight.state.in_(LIVE_LINE_STATES))
        .values(state="released", released_at=now, member_id=None)))
    if freed.rowcount != len(chosen):
        raise _lines_changed()
    _queue_refund(booking, refund, "guest_partial_cancellation", now)
    amendment = add_amendment(booking.contract, kind="guest_cancellation", lines=lines, refund_ore=refund,
                              invoice_credit_ore=credit, actor_id=actor.user_id, now=now)
    booking.refund_ore = (booking.refund_ore or 0) + refund
    booking.invoice_credited_ore = (booking.invoice_credited_ore or 0) + credit
    audit.record(actor, "booking.lines_cancelled", "booking", booking.id,
                 after={"amendment": amendment.number, "lines": [[line["bed_id"], line["night"]] for line in lines],
                        "lines_ore": lines_ore, "refund_ore": refund, "invoice_credited_ore": credit}, now=now)
    events.emit(events.BOOKING_LINES_CANCELLED, booking=booking, amendment=amendment, member_ids=unseated, now=now)
    return GuestCancellation(booking, refund, credit, lines, amendment)


def cancel_by_host(actor: Actor, booking_id: int, reason: str, *, now: datetime | None = None) -> Booking:
    """A host breaks the contract: the money received is refunded in full and an unpaid invoice credited in full
    (host_cancellation_ore), the beds stay locked for the stay, a strike and a flag."""
    now = now_or(now)
    booking = visible_booking(actor, booking_id)
    if booking.host_id != actor.user_id:
        raise Forbidden(_("Bara bokningens värd kan avboka den som värd."))
    reason = (reason or "").strip()
    if len(reason) > 1000:
        raise ValidationFailed({"reason": [_("Högst %(max)s tecken.", max=1000)]})
    clean_text(reason, "reason", multiline=True)
    with unit_of_work():
        booking = locked_booking(booking_id)
        if booking.status not in CANCELLABLE:
            raise _not_cancellable(booking)
        if is_offer(booking) and booking.status == "awaiting_payment":
            raise Conflict(_("Ett erbjudande från väntelistan som ingen har tagit emot kan inte avbokas."),
                           code="not_cancellable", status_now=booking.status)
        refund, credit = host_cancellation_ore(booking)
        _queue_refund(booking, refund, "host_cancellation", now)
        before = booking.status
        booking.status = "cancelled_by_host"
        booking.cancelled_at = now
        booking.cancel_reason = reason
        # Added to what earlier partial cancellations refunded and credited (the booking's row is locked).
        booking.refund_ore = (booking.refund_ore or 0) + refund
        booking.invoice_credited_ore = (booking.invoice_credited_ore or 0) + credit
        lost = [(line.bed_id, line.night, line.price_ore or 0) for line in _live_lines(booking.id)]
        db.session.execute(update(BedNight).where(
            BedNight.booking_id == booking.id, BedNight.state.in_(LIVE_LINE_STATES))
            .values(state="host_cancelled"))
        audit.record(actor, "booking.cancelled_by_host", "booking", booking.id, before={"status": before},
                     after={"status": booking.status, "refund_ore": refund, "invoice_credited_ore": credit,
                            "reason": reason}, now=now)
        add_strike(actor, booking.host_id, f"host cancelled booking {booking.id}", now=now)
        add_system_flag(actor, host_id=booking.host_id, booking_id=booking.id, category="cancellation",
                        description=f"The host cancelled booking {booking.id}: {reason}", strike_given=True, now=now)
        events.emit(events.BOOKING_CANCELLED_BY_HOST, booking=booking, now=now)
        if booking.contract is not None:  # a contract was broken: comparable beds are held for the coordinator
            rehousing.offer_for(booking, lost, now=now)
    refunds.after_cancellation(booking_id)
    return booking
