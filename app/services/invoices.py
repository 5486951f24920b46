"""Invoices organisations can pay (API.md "Invoices organisations can pay"): the ledger of invoice bookings.

One `Invoice` per invoice booking, issued with the booking's consecutive number (F-YYYY-NNNNNN) and an OCR reference
derived from it (app.services.ocr). Money received is appended as `InvoicePayment` rows (by hand, or from a
Bankgirot BgMax file); what cancellations take off is appended as `CreditNote` rows with their own consecutive
series (K-YYYY-NNNNNN). Nothing in the ledger is ever updated: an invoice's status is computed here, and only here.

How the figures are read, as an accountant would:

- payable = the invoice's amount less its credit notes; paid = every payment received;
- `paid` once paid >= payable and something was paid; `credited` when the credit notes took all of it and
  nothing was paid; `overdue` when some of the payable is still unpaid after the due date; `open` otherwise;
- a partial payment leaves the invoice open (or overdue) with the rest as `balance_ore`;
- an over-payment, and money received after a credit note (the payer paid the original amount), is recorded as
  received, the invoice is `paid`, and the excess is a credit balance in the organisation's favour shown as
  `to_refund_ore` ("att återbetala") on the ledger, to be paid back by bank transfer; the host never earns it.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Booking, Contract, CreditNote, Delegation, HostProfile, Invoice, InvoicePayment, User
from app.services import audit
from app.services.base import Actor, local_date, now_or, unit_of_work
from app.services.contracts import next_number, snapshot_of
from app.services.errors import Forbidden, NotFound, ValidationFailed
from app.services.ocr import ocr_for_invoice_number

CREDIT_REASONS = ("cancellation", "partial_cancellation", "host_cancellation", "unpaid")


# ---------------------------------------------------------------------------------------------
# Issuing and crediting (flush only: inside the caller's unit of work)
# ---------------------------------------------------------------------------------------------


def issue(booking: Booking, now: datetime) -> Invoice:
    """The invoice of an invoice booking that was just given its number and due date (flush only)."""
    if booking.id is None:
        db.session.flush()
    assert booking.invoice_number and booking.invoice_due_on  # nosec B101: issue_invoice set them
    invoice = Invoice(booking_id=booking.id, number=booking.invoice_number,
                      ocr=ocr_for_invoice_number(booking.invoice_number), issued_on=local_date(now),
                      due_on=booking.invoice_due_on, amount_ore=booking.total_ore, created_at=now)
    db.session.add(invoice)
    db.session.flush()
    from app.services import notifications
    notifications.queue_invoice(invoice, booking, now)
    return invoice


def credit(booking: Booking, amount_ore: int, reason: str, now: datetime) -> CreditNote | None:
    """A credit note taking `amount_ore` off the booking's invoice (flush only; nothing for a card booking or 0)."""
    if amount_ore <= 0 or booking.payment_method != "invoice":
        return None
    invoice = invoice_for_booking(booking.id)
    if invoice is None:
        return None
    year = int(invoice.number.split("-")[1])
    note = CreditNote(invoice_id=invoice.id, number=f"K-{year}-{next_number('credit_note', year):06d}",
                      issued_on=local_date(now), amount_ore=amount_ore, reason=reason, created_at=now)
    db.session.add(note)
    db.session.flush()
    from app.services import notifications
    notifications.queue_credit_note(note, invoice, booking, now)
    return note


def invoice_for_booking(booking_id: int) -> Invoice | None:
    return db.session.scalar(select(Invoice).where(Invoice.booking_id == booking_id))


def invoice_by_number(number: str) -> Invoice:
    invoice = db.session.scalar(select(Invoice).where(Invoice.number == number))
    if invoice is None:
        raise NotFound(_("Fakturan finns inte."))
    return invoice


# ---------------------------------------------------------------------------------------------
# Figures and status
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    amount_ore: int  # as issued
    credited_ore: int  # credit notes
    paid_ore: int  # payments received
    status: str

    @property
    def payable_ore(self) -> int:
        return max(self.amount_ore - self.credited_ore, 0)

    @property
    def balance_ore(self) -> int:
        """Still to pay."""
        return max(self.payable_ore - self.paid_ore, 0)

    @property
    def to_refund_ore(self) -> int:
        """Received beyond what is payable: a credit balance to pay back."""
        return max(self.paid_ore - self.payable_ore, 0)


def status_for(amount_ore: int, credited_ore: int, paid_ore: int, due_on: date, today: date) -> str:
    """The one rule for an invoice's status (see the module's docstring)."""
    payable = max(amount_ore - credited_ore, 0)
    if paid_ore > 0 and paid_ore >= payable:
        return "paid"
    if payable == 0:
        return "credited"
    if today > due_on:
        return "overdue"
    return "open"


def sums_of(invoice_id: int) -> tuple[int, int]:
    """(credited, paid) of an invoice, read from its append-only rows."""
    credited = db.session.scalar(select(func.coalesce(func.sum(CreditNote.amount_ore), 0))
                                 .where(CreditNote.invoice_id == invoice_id)) or 0
    paid = db.session.scalar(select(func.coalesce(func.sum(InvoicePayment.amount_ore), 0))
                             .where(InvoicePayment.invoice_id == invoice_id)) or 0
    return int(credited), int(paid)


def figures(invoice: Invoice, today: date) -> Figures:
    credited, paid = sums_of(invoice.id)
    return Figures(invoice.amount_ore, credited, paid,
                   status_for(invoice.amount_ore, credited, paid, invoice.due_on, today))


def received_ore(booking_id: int) -> int:
    """Invoice money received for a booking and still the host's to earn: payments, never beyond what is payable."""
    invoice = invoice_for_booking(booking_id)
    if invoice is None:
        return 0
    credited, paid = sums_of(invoice.id)
    return min(paid, max(invoice.amount_ore - credited, 0))


def booking_invoice_json(booking: Booking, today: date) -> dict | None:
    """GET /bookings/{id}'s `invoice`: {number, due_on, ocr, status, paid_ore} (and the credited amount)."""
    invoice = invoice_for_booking(booking.id)
    if invoice is None:
        if not booking.invoice_number:
            return None
        return {"number": booking.invoice_number, "due_on": booking.invoice_due_on.isoformat()
                if booking.invoice_due_on else None, "ocr": None, "status": "open", "paid_ore": 0,
                "credited_ore": booking.invoice_credited_ore or 0}
    money = figures(invoice, today)
    return {"number": invoice.number, "due_on": invoice.due_on.isoformat(), "ocr": invoice.ocr,
            "status": money.status, "paid_ore": money.paid_ore, "credited_ore": booking.invoice_credited_ore or 0,
            "balance_ore": money.balance_ore, "to_refund_ore": money.to_refund_ore}


# ---------------------------------------------------------------------------------------------
# The ledger and payments
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerRow:
    invoice: Invoice
    booking: Booking
    organisation: str
    money: Figures


@dataclass
class Ledger:
    rows: list[LedgerRow]
    sums: dict[str, dict[str, int]] = field(default_factory=dict)  # per status: count, amount, paid, balance


def ledger(status: str | None = None, *, now: datetime | None = None) -> Ledger:
    """Every invoice (or those of one status) with its figures, and the sums per status."""
    from app.models import INVOICE_STATUSES
    if status is not None and status not in INVOICE_STATUSES:
        raise ValidationFailed({"status": [_("Välj open, paid, credited eller overdue.")]})
    today = local_date(now_or(now))
    rows = []
    query = (select(Invoice, Booking, Delegation.name).join(Booking, Booking.id == Invoice.booking_id)
             .join(Delegation, Delegation.id == Booking.delegation_id).order_by(Invoice.id))
    for invoice, booking, organisation in db.session.execute(query).tuples():
        rows.append(LedgerRow(invoice, booking, organisation, figures(invoice, today)))
    sums: dict[str, dict[str, int]] = {
        name: {"count": 0, "amount_ore": 0, "credited_ore": 0, "paid_ore": 0, "balance_ore": 0, "to_refund_ore": 0}
        for name in INVOICE_STATUSES}
    for row in rows:
        bucket = sums[row.money.status]
        bucket["count"] += 1
        bucket["amount_ore"] += row.money.amount_ore
        bucket["credited_ore"] += row.money.credited_ore
        bucket["paid_ore"] += row.money.paid_ore
        bucket["balance_ore"] += row.money.balance_ore
        bucket["to_refund_ore"] += row.money.to_refund_ore
    if status is not None:
        rows = [row for row in rows if row.money.status == status]
    return Ledger(rows, sums)


def ledger_row(invoice: Invoice, *, now: datetime | None = None) -> LedgerRow:
    """One invoice's ledger row."""
    booking = db.session.get_one(Booking, invoice.booking_id)
    organisation = db.session.get_one(Delegation, booking.delegation_id).name
    return LedgerRow(invoice, booking, organisation, figures(invoice, local_date(now_or(now))))


def _parse_day(value) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed({"paid_on": [_("Ange betalningsdagen som ÅÅÅÅ-MM-DD.")]}) from None


def record_payment(actor: Actor, number: str, amount_ore, paid_on, *, bank_reference: str | None = None,
                   source: str = "manual", now: datetime | None = None) -> InvoicePayment | None:
    """Record money received on an invoice. Idempotent by `bank_reference`: a reference already recorded records
    nothing and answers None. Any positive amount is taken (partial, exact or more than is due)."""
    now = now_or(now)
    if not actor.is_admin and source == "manual":
        raise Forbidden(_("Bara administratörer registrerar betalningar."))
    if isinstance(amount_ore, bool) or not isinstance(amount_ore, int) or not 0 < amount_ore <= 10**11:
        raise ValidationFailed({"amount_ore": [_("Ett belopp i öre, större än noll.")]})
    day = _parse_day(paid_on)
    if day > local_date(now):
        raise ValidationFailed({"paid_on": [_("Betalningsdagen kan inte ligga i framtiden.")]})
    invoice = invoice_by_number(number)
    reference = bank_reference or f"manual:{uuid.uuid4().hex}"
    try:
        with unit_of_work():
            payment = InvoicePayment(invoice_id=invoice.id, amount_ore=amount_ore, paid_on=day, source=source,
                                     bank_reference=reference, actor_id=actor.user_id, created_at=now)
            db.session.add(payment)
            db.session.flush()
            audit.record(actor, "invoice.payment_recorded", "invoice", invoice.id,
                         after={"number": invoice.number, "amount_ore": amount_ore, "paid_on": day.isoformat(),
                                "source": source, "bank_reference": reference}, now=now)
    except IntegrityError:
        db.session.rollback()
        exists = db.session.scalar(select(InvoicePayment.id).where(InvoicePayment.bank_reference == reference))
        if exists is None:
            raise
        return None
    return payment


# ---------------------------------------------------------------------------------------------
# The document: what the PDF and the e-invoice both say
# ---------------------------------------------------------------------------------------------


def _round_ore(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class DocLine:
    bed: str
    quantity: int  # nights
    first_night: str
    last_night: str
    unit_all_in_ore: int  # per night, VAT included where there is VAT
    unit_net_ore: int  # per night, without VAT (equal to all-in outside VAT)

    @property
    def net_ore(self) -> int:
        return self.unit_net_ore * self.quantity


@dataclass(frozen=True)
class Totals:
    """EN 16931 totals: lines (BT-106) = tax exclusive (BT-109); + VAT (BT-110) = tax inclusive (BT-112);
    + rounding (BT-114) = payable (BT-115), which is always the all-in amount the buyer agreed to."""

    line_extension_ore: int
    vat_ore: int
    rounding_ore: int
    payable_ore: int

    @property
    def tax_inclusive_ore(self) -> int:
        return self.line_extension_ore + self.vat_ore


def net_of(all_in_ore: int, rate_pct: int | None) -> int:
    """The net of an all-in amount at a VAT rate, to the öre (all-in outside VAT)."""
    if not rate_pct:
        return all_in_ore
    return _round_ore(Decimal(all_in_ore) * 100 / (100 + rate_pct))


def totals_for(lines_net_ore: int, payable_ore: int, rate_pct: int | None) -> Totals:
    vat = _round_ore(Decimal(lines_net_ore) * (rate_pct or 0) / 100)
    return Totals(lines_net_ore, vat, payable_ore - lines_net_ore - vat, payable_ore)


@dataclass(frozen=True)
class Document:
    kind: str  # "invoice" or "credit_note"
    number: str
    issued_on: date
    due_on: date | None
    ocr: str
    invoice_number: str  # the invoice (a credit note's: the one it credits)
    invoice_issued_on: date
    booking_id: int
    language: str
    seller: dict
    buyer: dict
    payee: dict
    vat_rate_pct: int | None
    lines: list[DocLine]
    totals: Totals
    credit_reason: str | None = None


def _contract_lines(booking: Booking) -> list[dict]:
    contract = db.session.scalar(select(Contract).where(Contract.booking_id == booking.id))
    if contract is not None:
        return list(snapshot_of(contract)["lines"])
    return [{"bed_id": line.bed_id, "bed": str(line.bed_id), "night": line.night.isoformat(),
             "price_ore": line.price_ore or 0} for line in booking.lines]


def _grouped(lines: list[dict], rate: int | None) -> list[DocLine]:
    """One line per bed and price, with its nights."""
    groups: dict[tuple, list[dict]] = {}
    for line in lines:
        groups.setdefault((line.get("bed") or str(line["bed_id"]), line["price_ore"]), []).append(line)
    out = []
    for (bed, price), items in sorted(groups.items(), key=lambda item: (min(x["night"] for x in item[1]),
                                                                          item[0][0])):
        nights = sorted(x["night"] for x in items)
        out.append(DocLine(bed, len(items), nights[0], nights[-1], price, net_of(price, rate)))
    return out


def _parties(booking: Booking) -> tuple[dict, dict, dict, str]:
    host = db.session.get_one(HostProfile, booking.host_id)
    delegation = db.session.get_one(Delegation, booking.delegation_id)
    coordinator = db.session.get_one(User, booking.coordinator_id)
    config = current_app.config
    seller = {"id": f"SANGPLATS-HOST-{host.user_id}", "name": host.legal_name, "address": host.address,
              "postal_code": host.postal_code,
              "organisation_number": host.organisation_number, "vat_number": host.vat_number,
              "email": host.user.email if host.user else None}
    buyer = {"name": delegation.name, "organisation_number": delegation.organisation_number,
             "reference": delegation.buyer_reference or str(booking.id), "address": delegation.address,
             "postal_code": delegation.postal_code, "city": delegation.city, "country": "SE",
             "email": delegation.invoice_email or coordinator.email, "contact": coordinator.name}
    payee = {"name": config["PLATFORM_NAME"], "organisation_number": config["PLATFORM_ORGANISATION_NUMBER"],
             "bankgiro": config["PLATFORM_BANKGIRO"]}
    return seller, buyer, payee, coordinator.locale or "sv"


def invoice_document(invoice: Invoice) -> Document:
    booking = db.session.get_one(Booking, invoice.booking_id)
    seller, buyer, payee, language = _parties(booking)
    rate = db.session.get_one(HostProfile, booking.host_id).vat_rate_pct
    lines = _grouped(_contract_lines(booking), rate)
    totals = totals_for(sum(line.net_ore for line in lines), invoice.amount_ore, rate)
    return Document("invoice", invoice.number, invoice.issued_on, invoice.due_on, invoice.ocr, invoice.number,
                    invoice.issued_on, booking.id, language, seller, buyer, payee, rate, lines, totals)


def credit_note_document(note: CreditNote) -> Document:
    invoice = db.session.get_one(Invoice, note.invoice_id)
    booking = db.session.get_one(Booking, invoice.booking_id)
    seller, buyer, payee, language = _parties(booking)
    rate = db.session.get_one(HostProfile, booking.host_id).vat_rate_pct
    line = DocLine(f"Kreditering av faktura {invoice.number}", 1, "", "", note.amount_ore,
                   net_of(note.amount_ore, rate))
    return Document("credit_note", note.number, note.issued_on, None, invoice.ocr, invoice.number,
                    invoice.issued_on, booking.id, language, seller, buyer, payee, rate, [line],
                    totals_for(line.net_ore, note.amount_ore, rate), credit_reason=note.reason)


# ---------------------------------------------------------------------------------------------
# Reminders
# ---------------------------------------------------------------------------------------------

# Reminder steps: days after the due date. The season's `unpaid_invoice_cancel_days` decides the last step,
# when an invoice booking with nothing paid is cancelled and its beds are freed.
REMINDER_DAYS = (1, 8)
CANCEL_STEP = 99


def remind_due(now: datetime | None = None) -> dict[str, list[str]]:
    """Send the reminders that are due (one per overdue invoice per step) and cancel the invoice bookings the
    season's terms let go unpaid. Idempotent: every step is a unique row. Answers {"reminded": [...],
    "cancelled": [...]} (invoice numbers)."""
    from app.models import InvoiceReminder, Season
    from app.services import cancellations, notifications
    now = now_or(now)
    today = local_date(now)
    done: dict[str, list[str]] = {"reminded": [], "cancelled": []}
    candidates = db.session.scalars(select(Invoice).where(Invoice.due_on < today).order_by(Invoice.id)).all()
    for invoice in candidates:
        money = figures(invoice, today)
        if money.status != "overdue":
            continue
        booking = db.session.get_one(Booking, invoice.booking_id)
        season = db.session.get_one(Season, booking.season_id)
        late = (today - invoice.due_on).days
        if (late >= season.unpaid_invoice_cancel_days and money.paid_ore == 0
                and booking.status == "confirmed" and booking.check_in > today):
            if _take_step(invoice.id, CANCEL_STEP, now, InvoiceReminder):
                cancellations.cancel_unpaid_invoice(booking.id, now=now)
                done["cancelled"].append(invoice.number)
            continue
        steps = [i + 1 for i, days in enumerate(REMINDER_DAYS) if late >= days]
        if not steps:
            continue
        step = steps[-1]
        if _step_taken(invoice.id, step, InvoiceReminder):
            continue
        with unit_of_work():
            if not _insert_step(invoice.id, step, now, InvoiceReminder):
                continue
            notifications.queue_invoice_reminder(invoice, booking, money, step, now)
        done["reminded"].append(invoice.number)
    return done


def _step_taken(invoice_id: int, step: int, model) -> bool:
    return db.session.scalar(select(model.id).where(model.invoice_id == invoice_id, model.step == step)) is not None


def _insert_step(invoice_id: int, step: int, now: datetime, model) -> bool:
    """Insert the step's row in a savepoint; False when another run took it first."""
    try:
        with db.session.begin_nested():
            db.session.add(model(invoice_id=invoice_id, step=step, sent_at=now))
    except IntegrityError:
        return False
    return True


def _take_step(invoice_id: int, step: int, now: datetime, model) -> bool:
    if _step_taken(invoice_id, step, model):
        return False
    with unit_of_work():
        return _insert_step(invoice_id, step, now, model)


# ---------------------------------------------------------------------------------------------
# Bankgirot BgMax files
# ---------------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    recorded: list[tuple[str, str, int]] = field(default_factory=list)  # (invoice number, reference, öre)
    already: list[tuple[str, str, int]] = field(default_factory=list)  # recorded by an earlier import
    unknown: list[tuple[str, int, str]] = field(default_factory=list)  # (reference, öre, BGC serial)
    not_recorded: list[tuple[str, str, int, str]] = field(default_factory=list)  # (TK, reference, öre, serial)


def import_bgmax(content: str, *, now: datetime | None = None) -> ImportReport:
    """Record each payment of a BgMax file on the invoice its OCR reference names (app.services.bgmax)."""
    from app.services import bgmax
    now = now_or(now)
    parsed = bgmax.parse(content)
    ours = "".join(ch for ch in current_app.config["PLATFORM_BANKGIRO"] if ch.isdigit())
    if parsed.payee_bankgiro and parsed.payee_bankgiro != ours.lstrip("0"):
        raise ValidationFailed({"file": [_("BgMax-filen gäller bankgiro %(theirs)s, inte plattformens %(ours)s.",
                                           theirs=parsed.payee_bankgiro, ours=ours)]})
    report = ImportReport()
    for payment in parsed.payments:
        if payment.kind in ("21", "23"):
            report.not_recorded.append((payment.kind, payment.reference, payment.amount_ore, payment.serial))
            continue
        invoice = db.session.scalar(select(Invoice).where(Invoice.ocr == payment.reference)) \
            if payment.reference else None
        if invoice is None or payment.amount_ore <= 0:
            report.unknown.append((payment.reference, payment.amount_ore, payment.serial))
            continue
        row = (invoice.number, payment.reference, payment.amount_ore)
        recorded = record_payment(Actor.system(), invoice.number, payment.amount_ore,
                                  payment.paid_on or local_date(now), source="bgmax", now=now,
                                  bank_reference=f"bgmax:{payment.serial}:{payment.kind}:{payment.reference}")
        (report.recorded if recorded is not None else report.already).append(row)
    db.session.commit()
    return report
