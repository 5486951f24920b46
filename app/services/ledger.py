"""The money ledger: what was captured, what is refunded or on its way back, what a cancellation pays back,
what a host earns. Each figure is computed here and only here; the one function that writes a Refund row
(the refunds table is the outbox that `refunds.process_pending_refunds` sends) lives here too.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select

from app.extensions import db
from app.i18n import N_
from app.models import Amendment, Booking, HostDeduction, Payment, Refund
from app.services.contracts import snapshot_of

# A refund that still counts against the captured amount (a failed one is retried, so it counts too).
COUNTED_REFUND_STATUSES = ("pending", "sending", "succeeded", "failed")
# A refund that has left, or is leaving, for Stripe: what a sender checks its amount against.
SENT_REFUND_STATUSES = ("sending", "succeeded")
# Bookings that earn their host money (a guest cancellation keeps the contract's late share).
EARNING_STATUSES = ("confirmed", "completed", "cancelled_by_guest")

# Swedish msgids (marked for extraction); pages and e-mails translate them when shown.
REFUND_REASONS = {
    "guest_cancellation": N_("Avbokad av delegationen enligt avtalets villkor."),
    "guest_partial_cancellation": N_("Några bäddnätter avbokade av delegationen enligt avtalets villkor."),
    "host_cancellation": N_("Värden avbokade: hela beloppet återbetalas."),
    "arrival_report": N_("Bäddnätter som saknades eller inte var som beskrivet vid ankomsten: hela deras pris "
                         "återbetalas."),
    "late_payment_beds_taken": N_("Betalningen kom efter att reservationen löpt ut och sängarna hade hunnit bokas av "
                                  "någon annan. Hela beloppet återbetalas."),
    "late_payment_over_limit": N_("Betalningen kom efter att reservationen löpt ut, och organisationen har sedan dess "
                                  "nått sin gräns för bäddnätter. Hela beloppet återbetalas."),
    "payment_after_cancellation": N_("Betalningen kom efter att bokningen avbokats. Hela beloppet återbetalas."),
    "duplicate_payment": N_("Bokningen var redan betald. Den extra betalningen återbetalas."),
    "admin": N_("Återbetalning gjord av Sängplats administration."),
}


# ---------------------------------------------------------------------------------------------
# Captured and refunded
# ---------------------------------------------------------------------------------------------


def captured_ore(booking_id: int) -> int:
    """Card money captured for a booking (every succeeded payment)."""
    return db.session.scalar(select(func.coalesce(func.sum(Payment.amount_ore), 0)).where(
        Payment.booking_id == booking_id, Payment.status == "succeeded")) or 0


def refunds_ore(*, booking_id: int | None = None, payment_id: int | None = None,
                statuses: tuple[str, ...] = COUNTED_REFUND_STATUSES, excluding: int | None = None) -> int:
    """The sum of a booking's or a payment's refunds in these statuses (less the refund `excluding`)."""
    query = select(func.coalesce(func.sum(Refund.amount_ore), 0)).where(Refund.status.in_(statuses))
    if booking_id is not None:
        query = query.where(Refund.booking_id == booking_id)
    if payment_id is not None:
        query = query.where(Refund.payment_id == payment_id)
    if excluding is not None:
        query = query.where(Refund.id != excluding)
    return db.session.scalar(query) or 0


def paid_ore(booking_id: int) -> int:
    """Card money captured for a booking, less what was already refunded or is being refunded."""
    return captured_ore(booking_id) - refunds_ore(booking_id=booking_id)


def refunded_ore_for_payment(payment_id: int) -> int:
    """What Stripe has paid back of this payment."""
    return refunds_ore(payment_id=payment_id, statuses=("succeeded",))


def refundable_ore(payment_id: int) -> int:
    """Captured minus everything refunded or on its way: no refund request may exceed it."""
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.status != "succeeded":
        return 0
    return max(payment.amount_ore - refunds_ore(payment_id=payment_id), 0)


def left_to_send_ore(payment: Payment, refund_id: int) -> int:
    """What a sender may still pay back of `payment` besides refund `refund_id`: captured minus what has left."""
    return payment.amount_ore - refunds_ore(payment_id=payment.id, statuses=SENT_REFUND_STATUSES,
                                            excluding=refund_id)


def captured_payment(booking_id: int) -> Payment | None:
    """The booking's first captured card payment, or None."""
    return db.session.scalar(select(Payment).where(
        Payment.booking_id == booking_id, Payment.status == "succeeded").order_by(Payment.id).limit(1))


def latest_captured_payment(booking_id: int) -> Payment | None:
    """The booking's last captured card payment, or None (what a cancellation pays back from)."""
    return db.session.scalar(select(Payment).where(
        Payment.booking_id == booking_id, Payment.status == "succeeded").order_by(Payment.id.desc()).limit(1))


def add_refund(booking_id: int, payment_id: int | None, amount_ore: int, reason: str, now: datetime) -> Refund:
    """Write a pending refund, to be sent to Stripe after commit (the one place a Refund row is made; flush only)."""
    refund = Refund(booking_id=booking_id, payment_id=payment_id, amount_ore=amount_ore, reason=reason,
                    status="pending", created_at=now, updated_at=now)
    db.session.add(refund)
    return refund


# ---------------------------------------------------------------------------------------------
# What a cancellation pays back, and what a host earns
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuestTerms:
    """What a contract says a guest cancellation pays back: everything up to and including `free_until`,
    `late_refund_pct` per cent after."""

    free_until: date
    late_refund_pct: int

    def share_ore(self, base_ore: int, today: date) -> int:
        """The part of `base_ore` these terms give back to a guest who cancels on `today` (the one place the rule
        is written): all of it until the free-cancellation date, that day included; the late percentage of it
        after, rounded down to whole öre."""
        if today <= self.free_until:
            return base_ore
        return base_ore * self.late_refund_pct // 100


def guest_terms(booking: Booking) -> GuestTerms:
    """The guest cancellation terms of the booking's contract (its snapshot: a later change to the season does
    not reach a contract already formed); the season's for a hold that has no contract yet."""
    if booking.contract is not None:
        terms = snapshot_of(booking.contract).get("cancellation") or {}
        if "guest_free_until" in terms and "guest_late_refund_pct" in terms:
            return GuestTerms(date.fromisoformat(terms["guest_free_until"]), int(terms["guest_late_refund_pct"]))
    season = booking.season
    return GuestTerms(season.free_cancellation_until, season.late_cancellation_refund_pct)


def guest_share_ore(booking: Booking, base_ore: int, today: date) -> int:
    """The part of `base_ore` the booking's contract gives back to a guest who cancels on `today`."""
    return guest_terms(booking).share_ore(base_ore, today)


def amended_ore(booking_id: int) -> tuple[int, int]:
    """(value, kept) of the bed-nights the booking's amendments cancelled: their contract value, and what of it
    the host keeps (neither refunded nor credited: the late share)."""
    value, kept = db.session.execute(select(
        func.coalesce(func.sum(Amendment.lines_ore), 0),
        func.coalesce(func.sum(Amendment.lines_ore - Amendment.refund_ore - Amendment.invoice_credit_ore), 0),
    ).where(Amendment.booking_id == booking_id)).one()
    return int(value), int(kept)


def current_value_ore(booking: Booking) -> int:
    """What the booking is worth now: the contract's total (booking.total_ore, which never changes, like the
    contract) less the contract value of the bed-nights cancelled by amendments."""
    return booking.total_ore - amended_ore(booking.id)[0]


def lines_cancellation_ore(booking: Booking, lines_ore: int, today: date) -> tuple[int, int]:
    """(refund, invoice credit) of a guest cancelling bed-nights worth `lines_ore` of the contract today: the
    terms' share of them, paid back from card money actually received (never more than is left of it), or
    credited on an invoice the app has not been paid."""
    share = guest_share_ore(booking, lines_ore, today)
    if booking.payment_method == "card":
        return min(share, max(paid_ore(booking.id), 0)), 0
    return 0, share


def guest_cancellation_ore(booking: Booking, today: date) -> tuple[int, int]:
    """(refund, invoice credit) of a guest cancelling what remains of a booking today: the contract's terms'
    share (all of it until the free-cancellation date, the late percentage after) of what the remaining
    bed-nights are worth, but money is refunded only where it was received: a card's captured payment, less
    what was paid back already and what the host keeps of bed-nights cancelled before (so nothing is refunded
    twice). An invoice the app has not been paid is credited by that share instead, and the rest stays due."""
    if booking.status == "awaiting_payment":
        return 0, 0  # an unpaid card hold or an unaccepted waiting-list offer: nothing was paid or invoiced
    value, kept = amended_ore(booking.id)
    remaining = booking.total_ore - value
    if booking.payment_method == "card":
        return guest_share_ore(booking, max(min(paid_ore(booking.id) - kept, remaining), 0), today), 0
    return 0, guest_share_ore(booking, remaining, today)


def host_cancellation_ore(booking: Booking) -> tuple[int, int]:
    """(refund, invoice credit) of a host cancellation: the guest gets back all the money actually received and
    not yet refunded (a card's captured payment) and owes nothing more, so what is still due on an invoice the
    app has not been paid is credited in full rather than "refunded" (after partial cancellations, the rest of
    it). Invoice money already received is then a credit balance on the invoice ledger, paid back by bank
    transfer (app.services.invoices: `to_refund_ore`), never through Stripe."""
    if booking.status == "awaiting_payment":
        return 0, 0  # an unpaid card hold: nothing was paid or invoiced
    if booking.payment_method == "card":
        return paid_ore(booking.id), 0
    return 0, max(booking.total_ore - (booking.invoice_credited_ore or 0), 0)


def host_share_ore(booking: Booking) -> int:
    """What the host earns from a booking: the contract's amount minus every refund and credit (partial
    cancellations included: they keep their late share), for an invoice only as far as its money was received;
    nothing after a breach."""
    if booking.status not in EARNING_STATUSES:
        return 0
    return _coordinator_share_ore(booking) + rehousing_supplement_ore(booking)


def _coordinator_share_ore(booking: Booking) -> int:
    if booking.payment_method == "invoice":
        # Invoice money counts once it is received (payments on the invoice ledger), never beyond what is due.
        from app.services.invoices import received_ore
        due = max(booking.total_ore - booking.refund_ore - (booking.invoice_credited_ore or 0), 0)
        return min(due, received_ore(booking.id))
    return max(min(captured_ore(booking.id), booking.total_ore) - refunds_ore(booking_id=booking.id), 0)


def rehousing_supplement_ore(booking: Booking) -> int:
    """What a breaching host pays toward a rehousing booking (the new listing's price less the price offered): its
    host earns it on top of what the coordinator pays, from the breaching host's withheld payouts."""
    if booking.rehoused_from_id is None:
        return 0
    return int(db.session.scalar(select(func.coalesce(func.sum(HostDeduction.amount_ore), 0))
                                 .where(HostDeduction.offer_booking_id == booking.id)) or 0)


def host_deductions_ore(host_id: int) -> int:
    """What a host owes for the rehousings of their breaches, withheld from their payouts."""
    return int(db.session.scalar(select(func.coalesce(func.sum(HostDeduction.amount_ore), 0))
                                 .where(HostDeduction.host_id == host_id)) or 0)
