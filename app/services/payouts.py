"""The payout ledger: what Sängplats owes each host, payable 24 hours after check-in, minus refunds.

The ledger is the source of truth; sending the money sits behind `PayoutTransfer` (a manual
bank transfer today, Stripe Connect later). Host cancellations never pay out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import func, select

from app.extensions import db
from app.i18n import local_dt
from app.labels import in_sentence
from app.models import Booking, HostDeduction, Payout
from app.services import audit
from app.services.base import Actor, now_or, unit_of_work
from app.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.services.ledger import EARNING_STATUSES, host_deductions_ore, host_share_ore
from app.services.text import clean_text

STOCKHOLM = ZoneInfo("Europe/Stockholm")
CHECK_IN_HOUR = 15
PAYABLE_AFTER = timedelta(hours=24)


class PayoutTransfer(Protocol):
    """Moves a payout's money to the host and returns the transfer's reference."""

    def send(self, payout_id: int, host_id: int, amount_ore: int, reference: str) -> str: ...


class ManualTransfer:
    """The admin pays by bank transfer outside Sängplats; their reference (e.g. the bank's) is the record."""

    def send(self, payout_id: int, host_id: int, amount_ore: int, reference: str) -> str:
        reference = (reference or "").strip()
        if not reference or len(reference) > 255:
            raise ValidationFailed({"reference": [_("Ange banköverföringens referens (högst %(max)s tecken).",
                                                    max=255)]})
        return clean_text(reference, "reference")


def due_at_for(check_in: date) -> datetime:
    """24 hours after check-in (15:00 in Visby on the first night)."""
    start = datetime.combine(check_in, time(CHECK_IN_HOUR), STOCKHOLM)
    return (start + PAYABLE_AFTER).astimezone(UTC)


def sync_payouts(*, now: datetime | None = None) -> int:
    """Write the ledger up to `now`: new payouts for stays 24 h under way, amounts brought up to date. Idempotent."""
    now = now_or(now)
    latest_check_in = (now - PAYABLE_AFTER).astimezone(STOCKHOLM).date()
    created = 0
    with unit_of_work():
        # One writer of the ledger at a time (the worker, `flask payouts schedule`, an admin): two at once would
        # both void or re-amount a payout. Held until commit; SQLite's IMMEDIATE transaction already serialises.
        if db.engine.dialect.name == "postgresql":
            db.session.execute(select(func.pg_advisory_xact_lock(func.hashtext("sangplats.payouts"))))
        candidates = db.session.scalars(select(Booking).where(
            Booking.status.in_(EARNING_STATUSES), Booking.check_in <= latest_check_in,
            ~Booking.id.in_(select(Payout.booking_id)))).all()
        for booking in candidates:
            due_at = due_at_for(booking.check_in)
            amount = host_share_ore(booking)
            if due_at > now or amount <= 0:
                continue
            payout = Payout(booking_id=booking.id, host_id=booking.host_id, amount_ore=amount, due_at=due_at,
                            status="scheduled")
            db.session.add(payout)
            db.session.flush()
            audit.record(Actor.system(), "payout.scheduled", "payout", payout.id,
                         after={"booking_id": booking.id, "amount_ore": amount}, now=now)
            created += 1
        for payout in db.session.scalars(select(Payout).where(Payout.status == "scheduled")).all():
            booking = db.session.get_one(Booking, payout.booking_id)
            share = host_share_ore(booking)
            if payout.withheld_ore > share:  # the share fell below what was withheld: spread again below
                payout.withheld_ore = max(share, 0)
            amount = share - payout.withheld_ore  # what is withheld for deductions is set below
            if booking.status == "cancelled_by_host" or share <= 0:
                payout.status, payout.amount_ore = "void", 0
                audit.record(Actor.system(), "payout.void", "payout", payout.id, after={"status": booking.status},
                             now=now)
            elif amount != payout.amount_ore:
                audit.record(Actor.system(), "payout.amount", "payout", payout.id,
                             before={"amount_ore": payout.amount_ore}, after={"amount_ore": amount}, now=now)
                payout.amount_ore = amount
        _withhold_deductions(now)
    return created


def _withhold_deductions(now: datetime) -> None:
    """Withhold each host's rehousing deductions from their scheduled payouts, earliest due first (flush only, in
    sync_payouts' unit of work): what paid payouts already withheld counts; the rest of what is owed is spread
    again over the scheduled ones, each withholding at most its booking's share."""
    hosts = db.session.scalars(select(HostDeduction.host_id).distinct()).all()
    for host_id in hosts:
        owed = host_deductions_ore(host_id) - (db.session.scalar(
            select(func.coalesce(func.sum(Payout.withheld_ore), 0))
            .where(Payout.host_id == host_id, Payout.status == "paid")) or 0)
        scheduled = db.session.scalars(select(Payout).where(Payout.host_id == host_id, Payout.status == "scheduled")
                                       .order_by(Payout.due_at, Payout.id).with_for_update()).all()
        for payout in scheduled:
            share = payout.amount_ore + payout.withheld_ore
            withheld = max(min(share, owed), 0)
            owed -= withheld
            if withheld != payout.withheld_ore:
                audit.record(Actor.system(), "payout.withheld", "payout", payout.id,
                             before={"amount_ore": payout.amount_ore, "withheld_ore": payout.withheld_ore},
                             after={"amount_ore": share - withheld, "withheld_ore": withheld}, now=now)
                payout.amount_ore, payout.withheld_ore = share - withheld, withheld


def due_payouts(*, now: datetime | None = None) -> list[Payout]:
    """Scheduled payouts that are due, oldest first, as the ledger stands (read only: the job writes it)."""
    now = now_or(now)
    return list(db.session.scalars(select(Payout).where(Payout.status == "scheduled", Payout.due_at <= now)
                                   .order_by(Payout.due_at, Payout.id)))


def mark_paid(actor: Actor, payout_id: int, reference: str, *, transfer: PayoutTransfer | None = None,
              now: datetime | None = None) -> Payout:
    """An admin records that a due payout was sent to the host."""
    now = now_or(now)
    if not actor.is_admin:
        raise Forbidden(_("Bara administratörer gör utbetalningar."))
    sync_payouts(now=now)
    payout = db.session.get(Payout, payout_id)
    if payout is None:
        raise NotFound(_("Utbetalningen finns inte."))
    if payout.status != "scheduled":
        raise Conflict(_("Utbetalningen är redan %(status)s.", status=in_sentence("payout_status", payout.status)),
                       code="payout_not_scheduled",
                       status_now=payout.status)
    if payout.due_at > now:
        raise Conflict(_("Utbetalningen ska inte göras förrän %(due)s.", due=local_dt(payout.due_at, "d MMM y HH:mm")),
                       code="payout_not_due", due_at=payout.due_at.isoformat())
    snapshot = (payout.id, payout.host_id, payout.amount_ore)
    db.session.commit()
    transfer_reference = (transfer or ManualTransfer()).send(*snapshot, reference)
    with unit_of_work():
        payout = db.session.scalars(select(Payout).where(Payout.id == payout_id).with_for_update()
                                    .execution_options(populate_existing=True)).one()
        if payout.status != "scheduled" or payout.amount_ore != snapshot[2]:
            raise Conflict(_("Utbetalningen ändrades medan den betalades; titta på den igen."),
                           code="payout_changed")
        payout.status, payout.paid_at, payout.paid_by_id = "paid", now, actor.user_id
        payout.transfer_reference = transfer_reference
        audit.record(actor, "payout.paid", "payout", payout.id,
                     after={"amount_ore": payout.amount_ore, "reference": transfer_reference}, now=now)
    return payout


@dataclass
class StatementLine:
    booking_id: int
    check_in: date
    check_out: date
    booking_status: str
    amount_ore: int
    status: str  # upcoming | scheduled | paid | void
    due_at: datetime
    paid_at: datetime | None = None
    reference: str | None = None
    withheld_ore: int = 0  # withheld for the host's rehousing deductions (amount_ore is paid out)


@dataclass
class DeductionLine:
    """What the host owes for the rehousing of a booking they broke (withheld from their payouts)."""

    breached_booking_id: int
    offer_booking_id: int
    amount_ore: int
    at: datetime


@dataclass
class Statement:
    lines: list[StatementLine]
    upcoming_ore: int
    due_ore: int
    paid_ore: int
    deductions: list[DeductionLine] = field(default_factory=list)
    deducted_ore: int = 0  # the sum of `deductions`


def host_statement(host_id: int, *, now: datetime | None = None) -> Statement:
    """A host's payouts: paid, scheduled and still to come (projected from live bookings); read only."""
    now = now_or(now)
    lines: list[StatementLine] = []
    paid_booking_ids = set()
    for payout in db.session.scalars(select(Payout).where(Payout.host_id == host_id)):
        booking = db.session.get_one(Booking, payout.booking_id)
        paid_booking_ids.add(payout.booking_id)
        lines.append(StatementLine(booking.id, booking.check_in, booking.check_out, booking.status, payout.amount_ore,
                                   payout.status, payout.due_at, payout.paid_at, payout.transfer_reference,
                                   payout.withheld_ore))
    for booking in db.session.scalars(select(Booking).where(
            Booking.host_id == host_id, Booking.status.in_(EARNING_STATUSES),
            Booking.id.not_in(paid_booking_ids))):
        amount = host_share_ore(booking)
        if amount > 0:
            lines.append(StatementLine(booking.id, booking.check_in, booking.check_out, booking.status, amount,
                                       "upcoming", due_at_for(booking.check_in)))
    lines.sort(key=lambda line: (line.due_at, line.booking_id))
    deductions = [DeductionLine(row.breached_booking_id, row.offer_booking_id, row.amount_ore, row.created_at)
                  for row in db.session.scalars(select(HostDeduction).where(HostDeduction.host_id == host_id)
                                                .order_by(HostDeduction.created_at, HostDeduction.id))]
    return Statement(
        lines=lines,
        upcoming_ore=sum(line.amount_ore for line in lines if line.status == "upcoming"),
        due_ore=sum(line.amount_ore for line in lines if line.status == "scheduled"),
        paid_ore=sum(line.amount_ore for line in lines if line.status == "paid"),
        deductions=deductions,
        deducted_ore=sum(line.amount_ore for line in deductions),
    )
