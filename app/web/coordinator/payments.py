"""Payment pages: pay by card, payment status and receipts; admin payments; host payouts."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select

from app.extensions import db
from app.i18n import parse_kronor
from app.labels import label
from app.models import Booking, Payment, Payout, Refund, StripeEvent, User
from app.services import payments, payouts
from app.services.access import own_booking, visible_booking
from app.services.errors import DomainError
from app.services.ledger import REFUND_REASONS
from app.services.refunds import request_refund, retry_refund
from app.services.webhooks import retry_failed_events
from app.web.common import actor, role_required, wants_json
from app.web.converters import int32

bp = Blueprint("payments", __name__)


def _own_booking(booking_id: int) -> Booking:
    """The signed-in coordinator's own booking, else 404."""
    return own_booking(actor(), booking_id)


@bp.get("/bookings/<int:booking_id>/pay")
@role_required("coordinator")
def pay(booking_id):
    """Show the card form (Stripe.js card element) for a card booking awaiting payment."""
    booking = _own_booking(booking_id)
    if booking.status in ("confirmed", "completed"):
        flash(_("Bokningen är redan betald."), "info")
        return redirect(url_for("payments.status", booking_id=booking_id))
    g.allow_stripe = True
    try:
        client_secret, error = payments.setup_card_entry(actor(), booking_id), None
    except DomainError as exc:
        client_secret, error = None, exc.message
    return render_template("payments/pay.html", booking=booking, client_secret=client_secret, error=error,
                           stripe_js_url=current_app.config["STRIPE_JS_URL"],
                           publishable_key=current_app.config["STRIPE_PUBLISHABLE_KEY"])


@bp.post("/bookings/<int:booking_id>/pay")
@role_required("coordinator")
def pay_submit(booking_id):
    """Charge the card Stripe.js saved (its PaymentMethod id); answer JSON for pay.js."""
    _own_booking(booking_id)
    if not request.form.get("payment_method_id") and not wants_json():
        flash(_("Kortbetalning kräver JavaScript i webbläsaren."), "error")
        return redirect(url_for("payments.pay", booking_id=booking_id))
    try:
        result = payments.pay_booking(actor(), booking_id, request.form.get("payment_method_id"))
    except DomainError as exc:
        body = {"code": exc.code, "detail": exc.message, "setup_client_secret": None}  # nosec B105 - not a password
        if exc.code == "card_declined":
            try:  # a SetupIntent is used up once confirmed: a new card needs a new one
                body["setup_client_secret"] = payments.setup_card_entry(actor(), booking_id)
            except DomainError:
                pass
        return jsonify(body), exc.status
    return jsonify({"status": result.status, "payment_intent_id": result.payment_intent_id,
                    "client_secret": result.client_secret,
                    "status_url": url_for("payments.status", booking_id=booking_id)}), 201


@bp.get("/bookings/<int:booking_id>/payment")
@role_required("coordinator", "host", "admin")
def status(booking_id):
    """Show a booking's payment status as recorded (a GET only reads; the check button asks Stripe)."""
    booking = visible_booking(actor(), booking_id)
    rows = db.session.scalars(select(Payment).where(Payment.booking_id == booking_id).order_by(Payment.id)).all()
    refunds = db.session.scalars(select(Refund).where(Refund.booking_id == booking_id).order_by(Refund.id)).all()
    return render_template("payments/status.html", booking=booking, payments=rows, refunds=refunds,
                           reasons=REFUND_REASONS, is_coordinator=booking.coordinator_id == current_user.id,
                           open_payments=any(p.status in payments.OPEN_STATUSES for p in rows))


@bp.post("/bookings/<int:booking_id>/payment/check")
@role_required("coordinator", "host", "admin")
def check_status(booking_id):
    """Re-fetch the booking's open payments from Stripe and apply them (the webhook's second trigger)."""
    visible_booking(actor(), booking_id)
    payments.sync_booking(booking_id)
    return redirect(url_for("payments.status", booking_id=booking_id))


@bp.get("/bookings/<int:booking_id>/receipt")
@role_required("coordinator", "admin")
def receipt(booking_id):
    """A printable receipt for a paid card booking."""
    booking = visible_booking(actor(), booking_id)
    paid = db.session.scalars(select(Payment).where(Payment.booking_id == booking_id,
                                                    Payment.status == "succeeded").order_by(Payment.id)).all()
    if not paid:
        abort(404)
    refunds = db.session.scalars(select(Refund).where(Refund.booking_id == booking_id,
                                                      Refund.status == "succeeded").order_by(Refund.id)).all()
    return render_template("payments/receipt.html", booking=booking, payments=paid, refunds=refunds,
                           reasons=REFUND_REASONS)


@bp.get("/admin/payments")
@role_required("admin")
def admin_payments():
    """Payments, refunds that need attention and webhook events that failed."""
    recent = db.session.scalars(select(Payment).order_by(Payment.id.desc()).limit(100)).all()
    refunds = db.session.scalars(select(Refund).order_by(Refund.id.desc()).limit(100)).all()
    events = db.session.scalars(select(StripeEvent).where(StripeEvent.status == "failed")
                                .order_by(StripeEvent.id.desc()).limit(100)).all()
    return render_template("payments/admin.html", payments=recent, refunds=refunds, events=events,
                           reasons=REFUND_REASONS)


@bp.post("/admin/payments/refunds/<int:refund_id>/retry")
@role_required("admin")
def admin_retry_refund(refund_id):
    """Send a failed refund to Stripe again."""
    try:
        refund = retry_refund(actor(), refund_id)
        flash(_("Återbetalningen skickades.") if refund.status == "succeeded"
              else _("Återbetalningen misslyckades igen: %(error)s", error=refund.last_error),
              "success" if refund.status == "succeeded" else "error")
    except DomainError as exc:
        flash(exc.message, "error")
    return redirect(url_for("payments.admin_payments"))


@bp.post("/admin/payments/events/retry")
@role_required("admin")
def admin_retry_events():
    """Handle the failed webhook events again."""
    done = retry_failed_events()
    flash(_("%(n)s händelser hanterades.", n=done), "info")
    return redirect(url_for("payments.admin_payments"))


@bp.post("/admin/payments/refund")
@role_required("admin")
def admin_refund():
    """Refund part of a booking's card payment by hand (never more than is left)."""
    try:
        booking_id = int32(request.form.get("booking_id", ""))
        amount_ore = parse_kronor(request.form.get("amount_kr", ""))
    except ValueError:
        flash(_("Ange bokningsnummer och belopp i kronor."), "error")
        return redirect(url_for("payments.admin_payments"))
    try:
        refund = request_refund(actor(), booking_id, amount_ore)
        flash(_("Återbetalning %(id)s: %(status)s.", id=refund.id, status=label("refund_status", refund.status)),
              "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return redirect(url_for("payments.admin_payments"))


@bp.get("/admin/payments/payouts")
@role_required("admin")
def admin_payouts():
    """Payouts due to hosts, with a form to record each one paid."""
    due = payouts.due_payouts()
    paid = db.session.scalars(select(Payout).where(Payout.status == "paid").order_by(Payout.paid_at.desc())
                              .limit(50)).all()
    hosts = {u.id: u for u in db.session.scalars(select(User).where(
        User.id.in_({p.host_id for p in due} | {p.host_id for p in paid})))}
    return render_template("payments/admin_payouts.html", due=due, paid=paid, hosts=hosts)


@bp.post("/admin/payments/payouts/sync")
@role_required("admin")
def admin_sync_payouts():
    """Bring the payout ledger up to now (the job does it too), instead of writing on a page view."""
    created = payouts.sync_payouts()
    flash(ngettext("%(num)s ny utbetalning.", "%(num)s nya utbetalningar.", created), "info")
    return redirect(url_for("payments.admin_payouts"))


@bp.post("/admin/payments/payouts/<int:payout_id>/paid")
@role_required("admin")
def admin_mark_paid(payout_id):
    """Record that a payout was sent to the host."""
    try:
        payouts.mark_paid(actor(), payout_id, request.form.get("reference", ""))
        flash(_("Utbetalningen är markerad som betald."), "success")
    except DomainError as exc:
        flash(getattr(exc, "errors", {}).get("reference", [exc.message])[0], "error")
    return redirect(url_for("payments.admin_payouts"))


@bp.get("/host/payouts")
@role_required("host")
def host_payouts():
    """The host's payout statement: paid, due and still to come."""
    return render_template("payments/host_payouts.html", statement=payouts.host_statement(current_user.id))


# ---------------------------------------------------------------------------------------------
# Invoices: the documents for the booking's parties, the ledger for admins
# ---------------------------------------------------------------------------------------------


def _invoice_document(booking_id: int):
    from app.services import invoices
    booking = visible_booking(actor(), booking_id)  # its coordinator, its host, an admin
    invoice = invoices.invoice_for_booking(booking.id)
    if invoice is None:
        abort(404)
    return invoices.invoice_document(invoice)


@bp.get("/bookings/<int:booking_id>/invoice.pdf")
@role_required("coordinator", "host", "admin")
def invoice_pdf(booking_id):
    """The booking's invoice as PDF."""
    from flask import Response

    from app.services.invoice_pdf import render
    document = _invoice_document(booking_id)
    return Response(render(document), mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{document.number}.pdf"'})


@bp.get("/bookings/<int:booking_id>/invoice.xml")
@role_required("coordinator", "host", "admin")
def invoice_xml(booking_id):
    """The booking's invoice as a Peppol BIS Billing 3.0 e-invoice."""
    from flask import Response

    from app.services.einvoice import build
    document = _invoice_document(booking_id)
    return Response(build(document), mimetype="application/xml", headers={
        "Content-Disposition": f'attachment; filename="{document.number}.xml"'})


@bp.get("/admin/payments/invoices")
@role_required("admin")
def admin_invoices():
    """The invoice ledger: open, overdue, paid and credited invoices with their sums; record money received."""
    from app.models import INVOICE_STATUSES
    from app.services import invoices
    status = request.args.get("status") or None
    if status not in (None, *INVOICE_STATUSES):
        status = None
    book = invoices.ledger(status)
    return render_template("payments/admin_invoices.html", book=book, status_filter=status,
                           statuses=INVOICE_STATUSES)


@bp.post("/admin/payments/invoices/<number>/payments")
@role_required("admin")
def admin_invoice_payment(number):
    """Record money received on an invoice (amount in kronor, payment date)."""
    from datetime import date

    from app.services import invoices
    try:
        amount = parse_kronor(request.form.get("amount", ""))
    except ValueError:
        flash(_("Ange beloppet i kronor, till exempel 1 250,50."), "error")
        return redirect(url_for("payments.admin_invoices"))
    try:
        paid_on = date.fromisoformat(request.form.get("paid_on", ""))
    except ValueError:
        flash(_("Ange betalningsdagen som ÅÅÅÅ-MM-DD."), "error")
        return redirect(url_for("payments.admin_invoices"))
    try:
        invoices.record_payment(actor(), number, amount, paid_on)
        flash(_("Betalningen på faktura %(number)s är registrerad.", number=number), "success")
    except DomainError as exc:
        errors = getattr(exc, "errors", {})
        flash(next(iter(errors.values()))[0] if errors else exc.message, "error")
    return redirect(url_for("payments.admin_invoices"))
