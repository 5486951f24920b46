"""The invoice ledger: one invoice per invoice booking, its payments, credit notes and reminders.

Every table here is append-only (database triggers refuse UPDATE and DELETE, migration 0018): an invoice's
status is computed from its payments and credit notes (app.services.invoices.status_of), never stored.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

INVOICE_STATUSES = ("open", "paid", "credited", "overdue")
PAYMENT_SOURCES = ("manual", "bgmax")


class Invoice(Model):
    __tablename__ = "invoices"
    __table_args__ = (CheckConstraint("amount_ore >= 0", name="amount_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), unique=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)  # the booking's invoice_number, F-YYYY-NNNNNN
    ocr: Mapped[str] = mapped_column(String(25), unique=True)
    issued_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    amount_ore: Mapped[int] = mapped_column()  # the all-in total (the contract's), payable before credits
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    payments: Mapped[list[InvoicePayment]] = relationship(order_by="InvoicePayment.id")
    credit_notes: Mapped[list[CreditNote]] = relationship(order_by="CreditNote.id")


class InvoicePayment(Model):
    __tablename__ = "invoice_payments"
    __table_args__ = (
        CheckConstraint("amount_ore > 0", name="amount_positive"),
        CheckConstraint("source IN ('manual', 'bgmax')", name="source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount_ore: Mapped[int] = mapped_column()
    paid_on: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(8))
    # Unique: what makes an import idempotent (BgMax: the bankgiro serial number of the payment; by hand: a
    # key of the request). A second import of the same file finds every reference taken and pays nothing.
    bank_reference: Mapped[str] = mapped_column(String(80), unique=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CreditNote(Model):
    __tablename__ = "credit_notes"
    __table_args__ = (CheckConstraint("amount_ore > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)  # K-YYYY-NNNNNN, its own consecutive series
    issued_on: Mapped[date] = mapped_column(Date)
    amount_ore: Mapped[int] = mapped_column()  # all-in, taken off the invoice
    reason: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    invoice: Mapped[Invoice] = relationship(back_populates="credit_notes")


class InvoiceReminder(Model):
    """One row per reminder step sent (or the cancellation for non-payment): UNIQUE (invoice, step) makes each
    step happen once, however often and however concurrently `invoices remind` runs."""

    __tablename__ = "invoice_reminders"
    __table_args__ = (UniqueConstraint("invoice_id", "step", name="uq_invoice_reminders_invoice_step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    step: Mapped[int] = mapped_column()
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
