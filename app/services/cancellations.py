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
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from flask_babel import gettext as _
from sqlalchemy import select, update

from app.extensions import db
from app.i18n import local_date as local_date_text
from app.labels import in_sentence
from app.models import LIVE_LINE_STATES, Amendment, BedNight, Booking
from app.services import audit, events, invoices, refunds, rehousing
from app.services.access import locked_booking, visible_booking
from app.services.availability import check_not_past
from app.services.base import Actor, local_date, now_or, unit_of_work
from app.services.contracts import add_amendment, is_amended, snapshot_of
from app.services.errors import Conflict, DomainError, Forbidden, ValidationFailed
from app.services.flags import add_report_flag, add_system_flag
from app.services.inventory import CANCELLABLE
from app.services.ledger import (
    add_refund,
    guest_cancellation_ore,
    host_cancellation_ore,
    latest_captured_payment,
    lines_cancellation_ore,
    paid_ore,
)
from app.services.offers import is_offer
from app.services.text import clean_text
from app.services.vetting import give_strike

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
    invoices.credit(booking, credit, "cancellation", now)
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
    invoices.credit(booking, credit, "partial_cancellation", now)
    audit.record(actor, "booking.lines_cancelled", "booking", booking.id,
                 after={"amendment": amendment.number, "lines": [[line["bed_id"], line["night"]] for line in lines],
                        "lines_ore": lines_ore, "refund_ore": refund, "invoice_credited_ore": credit}, now=now)
    events.emit(events.BOOKING_LINES_CANCELLED, booking=booking, amendment=amendment, member_ids=unseated, now=now)
    return GuestCancellation(booking, refund, credit, lines, amendment)


def cancel_unpaid_invoice(booking_id: int, *, now: datetime | None = None) -> Booking | None:
    """The season's terms let an invoice go unpaid too long (app.services.invoices.remind_due): the booking is
    cancelled as the client's own cancellation under the contract's terms (the client broke the payment term),
    its beds are freed and the invoice credited by the terms' share; the rest stays due. None when the booking
    is no longer confirmed (cancelled meanwhile)."""
    now = now_or(now)
    with unit_of_work():
        booking = locked_booking(booking_id)
        if booking.status != "confirmed" or booking.payment_method != "invoice":
            return None
        invoice = invoices.invoice_for_booking(booking.id)
        if invoice is not None and invoices.sums_of(invoice.id)[1] > 0:
            return None  # money arrived since the reminder run looked (read again under the booking's lock)
        booking.cancel_reason = "unpaid_invoice"
        _cancel_whole(Actor.system(), booking, now)
    refunds.after_cancellation(booking_id)
    return booking


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
        invoices.credit(booking, credit, "host_cancellation", now)
        lost = [(line.bed_id, line.night, line.price_ore or 0) for line in _live_lines(booking.id)]
        db.session.execute(update(BedNight).where(
            BedNight.booking_id == booking.id, BedNight.state.in_(LIVE_LINE_STATES))
            .values(state="host_cancelled"))
        audit.record(actor, "booking.cancelled_by_host", "booking", booking.id, before={"status": before},
                     after={"status": booking.status, "refund_ore": refund, "invoice_credited_ore": credit,
                            "reason": reason}, now=now)
        _profile, suspended_from = give_strike(actor, booking.host_id, f"host cancelled booking {booking.id}",
                                               now=now)
        flag = add_system_flag(actor, host_id=booking.host_id, booking_id=booking.id, category="cancellation",
                               description=f"The host cancelled booking {booking.id}: {reason}", strike_given=True,
                               now=now)
        flag.strike_suspended_from = suspended_from
        events.emit(events.BOOKING_CANCELLED_BY_HOST, booking=booking, now=now)
        if booking.contract is not None:  # a contract was broken: comparable beds are held for the coordinator
            rehousing.offer_for(booking, lost, now=now)
    refunds.after_cancellation(booking_id)
    return booking


# ---------------------------------------------------------------------------------------------
# Reports on arrival (issue 17): bed-nights missing or not as described, refunded in full at once
# ---------------------------------------------------------------------------------------------

REPORT_CATEGORIES = ("missing", "not_as_described")
REPORT_DAYS_AFTER_CHECK_IN = 1  # from the check-in date until the end of the day after it, Stockholm time


@dataclass(frozen=True)
class ArrivalReport:
    booking: Booking
    refund_ore: int
    invoice_credit_ore: int
    lines: list[dict]
    amendment: Amendment
    flag_id: int
    rehousing: rehousing.RehousingOffer | None


def report_on_arrival(actor: Actor, booking_id: int, lines: Sequence[tuple[int, date]], category: str,
                      description: str, *, now: datetime | None = None) -> ArrivalReport:
    """The coordinator reports bed-nights missing or not as described on arrival: they are refunded in full at
    once (card money received, or credited on the invoice), stay locked (`host_cancelled`), an amendment records
    them beside the contract, a flag opens against the host with the facts, and comparable beds are offered for
    the reported nights not yet passed. A report sent twice at once refunds once: the second finds the
    bed-nights no longer live (the booking's row lock, and the conditional UPDATE's row count behind it)."""
    now = now_or(now)
    booking = _coordinator_only(actor, booking_id)
    errors: dict[str, list[str]] = {}
    if category not in REPORT_CATEGORIES:
        errors["category"] = [_("Välj en av: %(choices)s.", choices=", ".join(REPORT_CATEGORIES))]
    description = (description or "").strip()
    if not description or len(description) > 5000:
        errors["description"] = [_("Beskriv vad som hände (högst %(max)s tecken).", max=5000)]
    clean_text(description, "description", multiline=True, errors=errors)
    if errors:
        raise ValidationFailed(errors)
    wanted = _check_shape(lines)
    today = local_date(now)
    last_day = booking.check_in + timedelta(days=REPORT_DAYS_AFTER_CHECK_IN)
    if not booking.check_in <= today <= last_day:
        raise DomainError(_("Brister anmäls från incheckningsdagen %(first)s till och med dagen efter, %(last)s.",
                            first=local_date_text(booking.check_in, "d MMM y"),
                            last=local_date_text(last_day, "d MMM y")),
                          code="report_window_closed", status=422, opens_on=booking.check_in.isoformat(),
                          closes_on=last_day.isoformat())
    with unit_of_work():
        booking = locked_booking(booking_id)
        if booking.status != "confirmed" or booking.contract is None:
            raise Conflict(_("Bokningen är %(status)s; bara en bekräftad bokning kan anmälas.",
                             status=in_sentence("booking_status", booking.status)),
                           code="not_reportable", status_now=booking.status)
        by_key = {(line.bed_id, line.night): line for line in _live_lines(booking.id)}
        if any(key not in by_key for key in wanted):
            ours = set(db.session.execute(select(BedNight.bed_id, BedNight.night).where(
                BedNight.booking_id == booking.id)).tuples())
            strangers = [key for key in wanted if key not in ours]
            if strangers:
                raise ValidationFailed({"lines": [_("%(line)s ingår inte i bokningen; välj bland bokningens "
                                                    "bäddnätter.", line=_line_name(*key)) for key in strangers]})
            raise _lines_changed()  # released, or reported by a report sent at the same time
        chosen = [by_key[key] for key in wanted]
        reported = _line_dicts(booking, chosen)
        lines_ore = sum(line["price_ore"] for line in reported)
        taken = cast("CursorResult[Any]", db.session.execute(update(BedNight).where(
            BedNight.id.in_([line.id for line in chosen]), BedNight.state.in_(LIVE_LINE_STATES))
            .values(state="host_cancelled")))
        if taken.rowcount != len(chosen):
            raise _lines_changed()
        if booking.payment_method == "card":
            refund, credit = min(lines_ore, max(paid_ore(booking.id), 0)), 0
        else:
            refund, credit = 0, min(lines_ore, max(booking.total_ore - (booking.invoice_credited_ore or 0), 0))
        _queue_refund(booking, refund, "arrival_report", now)
        amendment = add_amendment(booking.contract, kind="arrival_report", lines=reported, refund_ore=refund,
                                  invoice_credit_ore=credit, actor_id=actor.user_id, now=now)
        booking.refund_ore = (booking.refund_ore or 0) + refund
        booking.invoice_credited_ore = (booking.invoice_credited_ore or 0) + credit
        invoices.credit(booking, credit, "arrival_report", now)
        listed = ", ".join(f"bed {line['bed_id']} night {line['night']}" for line in reported)
        flag = add_report_flag(actor, host_id=booking.host_id, booking_id=booking.id, category="misrepresentation",
                               description=f"Reported on arrival as {category}: {listed} "
                                           f"(amendment {amendment.number}). {description}", now=now)
        audit.record(actor, "booking.arrival_report", "booking", booking.id,
                     after={"amendment": amendment.number, "category": category, "flag_id": flag.id,
                            "lines": [[line["bed_id"], line["night"]] for line in reported],
                            "lines_ore": lines_ore, "refund_ore": refund, "invoice_credited_ore": credit}, now=now)
        offer = rehousing.offer_for(booking, [(line.bed_id, line.night, line.price_ore or 0) for line in chosen],
                                    now=now)
        flag_id = flag.id
    refunds.after_cancellation(booking_id)
    return ArrivalReport(booking, refund, credit, reported, amendment, flag_id, offer)
