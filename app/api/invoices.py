"""The invoice ledger for admins: list invoices, record money received."""
from flask import request

from app.api import api
from app.api.common import Body, current_actor, json_body, roles
from app.presenters import iso
from app.services import invoices


def ledger_row_json(row: invoices.LedgerRow) -> dict:
    money = row.money
    return {"number": row.invoice.number, "booking_id": row.booking.id, "organisation": row.organisation,
            "ocr": row.invoice.ocr, "issued_on": iso(row.invoice.issued_on), "due_on": iso(row.invoice.due_on),
            "status": money.status, "amount_ore": money.amount_ore, "credited_ore": money.credited_ore,
            "payable_ore": money.payable_ore, "paid_ore": money.paid_ore, "balance_ore": money.balance_ore,
            "to_refund_ore": money.to_refund_ore}


@api.get("/admin/invoices")
@roles("admin")
def admin_invoices():
    """Invoices (filter by status) with their payments and credits, and the sums per status."""
    book = invoices.ledger(request.args.get("status") or None)
    return {"invoices": [ledger_row_json(row) for row in book.rows], "sums": book.sums}


@api.post("/admin/invoices/<number>/payments")
@roles("admin")
def admin_invoice_payment(number):
    """Record money received on an invoice."""
    body = Body(json_body())
    amount, paid_on = body.int("amount_ore", minimum=1), body.date("paid_on")
    body.done()
    payment = invoices.record_payment(current_actor(), number, amount, paid_on)
    row = invoices.ledger_row(invoices.invoice_by_number(number))
    return {"payment": {"id": payment.id if payment else None, "amount_ore": amount, "paid_on": iso(paid_on)},
            "invoice": ledger_row_json(row)}, 201
