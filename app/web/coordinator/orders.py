"""Coordinator pages for orders: a group proposal reviewed and booked in one step, the order, its card payment."""
from __future__ import annotations

import secrets

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select

from app.extensions import db
from app.models import Delegation, Payment
from app.services import idempotency, orders
from app.services.errors import DomainError
from app.services.payments import OPEN_STATUSES
from app.web.common import actor, flash_error, required, role_required, wants_json
from app.web.coordinator import presenters
from app.web.coordinator.forms import OrderForm, OrderStayForm

bp = Blueprint("orders", __name__, url_prefix="/coordinator/orders")


@bp.before_request
@role_required("coordinator")
def require_coordinator():
    """Every page here is for signed-in coordinators only."""


def _new_token() -> str:
    """A one-time key for one review form: its submits, however many, make at most one order."""
    return secrets.token_urlsafe(24)


def _delegation_choices(form: OrderForm) -> None:
    mine = db.session.scalars(select(Delegation).where(Delegation.coordinator_id == current_user.id)
                              .order_by(Delegation.id))
    form.delegation_id.choices = [(d.id, f"{d.name} ({d.organisation_number})") for d in mine]


def _render_review(form: OrderForm, status: int = 200, error: DomainError | None = None):
    """The review of every part's contract, with the refusal of a submit (its conflicts part by part)."""
    _delegation_choices(form)
    preview, conflicts = None, []
    if form.parts.data and form.check_in.data and form.check_out.data:
        try:
            preview = presenters.order_preview(form.parts.data, form.check_in.data, form.check_out.data)
        except DomainError as refusal:
            if error is None or refusal.code != error.code:  # the submit's refusal is shown already
                flash_error(refusal)
            status = refusal.status if status == 200 else status
    elif error is None:  # nothing to review: say why (the fields that carry the proposal are hidden)
        for message in form.parts.errors + form.check_in.errors + form.check_out.errors:
            flash(str(message), "error")
    if preview is not None and error is not None:
        conflicts = presenters.order_conflicts(error, preview)
    return render_template("coordinator/order_review.html", form=form, preview=preview, conflicts=conflicts), status


@bp.get("/review")
def review():
    """Show every contract of a group proposal, the order's total and one acceptance, to book it in one step."""
    stay = OrderStayForm(request.args)
    if not stay.validate():
        flash(_("Välj ett förslag i sökningen först."), "error")
        return redirect(url_for("coordinator.search"))
    form = OrderForm(formdata=None, check_in=stay.check_in.data, check_out=stay.check_out.data,
                     parts=stay.parts.data, delegation_id=stay.delegation_id.data, token=_new_token())
    return _render_review(form)


@bp.post("/review")
def place():
    """Book the reviewed proposal: one order, one booking and contract per part, all or none, once per form."""
    form = OrderForm()
    _delegation_choices(form)
    if not form.validate_on_submit():
        if form.token.errors:
            form.token.data = _new_token()
        return _render_review(form, 422)
    who = actor()
    values = {"delegation_id": form.delegation_id.data, "check_in": form.check_in.data,
              "check_out": form.check_out.data, "parts": [{"bed_ids": ids} for ids in required(form.parts.data)],
              "accept_contract": form.accept_contract.data, "payment_method": form.payment_method.data}
    try:
        answer = idempotency.run_or_raise(
            required(who.user_id), f"order-page:{form.token.data}", values,
            lambda: (201, {"order_id": orders.create_order(who, **values).id}))
    except DomainError as error:
        if error.code == "idempotency_in_progress":  # the same form's first submit is still booking
            return render_template("coordinator/order_pending.html"), error.status
        if error.code != "bed_nights_taken":
            flash_error(error, form)
        form.token.data = _new_token()  # what is submitted next is a new request
        return _render_review(form, error.status, error=error)
    item = orders.visible_order(who, answer["order_id"])
    numbers = ", ".join(required(booking.contract).number for booking in item.bookings)
    flash(ngettext("Beställningen är gjord: %(num)d bokning. Avtal %(numbers)s är bindande.",
                   "Beställningen är gjord: %(num)d bokningar. Avtalen %(numbers)s är bindande.",
                   len(item.bookings), numbers=numbers), "success")
    if orders.due_card_bookings(item):
        return redirect(url_for("orders.pay", order_id=item.id))
    return redirect(url_for("orders.order", order_id=item.id))


@bp.get("/<int:order_id>")
def order(order_id):
    """Show an order: its status and total, every booking with its contract, invoice or card payment."""
    item = orders.visible_order(actor(), order_id)
    booking_ids = [booking.id for booking in item.bookings]
    open_payments = db.session.scalar(select(Payment.id).where(
        Payment.booking_id.in_(booking_ids), Payment.status.in_(OPEN_STATUSES)).limit(1)) is not None
    return render_template("coordinator/order.html", order=item, status=orders.order_status(item),
                           due=orders.due_card_bookings(item), open_payments=open_payments)


@bp.get("/<int:order_id>/pay")
def pay(order_id):
    """Show one card form (Stripe.js) that pays every card booking of the order."""
    item = orders.visible_order(actor(), order_id)
    due = orders.due_card_bookings(item)
    if not due:
        flash(_("Det finns inget kvar att betala med kort i beställningen."), "info")
        return redirect(url_for("orders.order", order_id=order_id))
    g.allow_stripe = True
    try:
        client_secret, error = orders.setup_card_entry(actor(), order_id), None
    except DomainError as exc:
        client_secret, error = None, exc.message
    return render_template("coordinator/order_pay.html", order=item, due=due, client_secret=client_secret,
                           error=error, amount_ore=sum(booking.total_ore for booking in due),
                           stripe_js_url=current_app.config["STRIPE_JS_URL"],
                           publishable_key=current_app.config["STRIPE_PUBLISHABLE_KEY"])


@bp.post("/<int:order_id>/pay")
def pay_submit(order_id):
    """Charge the card Stripe.js saved to every card booking of the order (orders.pay_order); JSON for pay.js."""
    orders.visible_order(actor(), order_id)
    if not request.form.get("payment_method_id") and not wants_json():
        flash(_("Kortbetalning kräver JavaScript i webbläsaren."), "error")
        return redirect(url_for("orders.pay", order_id=order_id))
    try:
        results, status = orders.pay_order(actor(), order_id, request.form.get("payment_method_id"))
    except DomainError as exc:
        body = {"code": exc.code, "detail": exc.message, "setup_client_secret": None}  # nosec B105 - not a password
        if exc.code == "card_declined":
            try:  # a SetupIntent is used up once confirmed: a new card needs a new one
                body["setup_client_secret"] = orders.setup_card_entry(actor(), order_id)
            except DomainError:
                pass
        return jsonify(body), exc.status
    # Each PaymentIntent that wants 3-D Secure is finished in the browser, one after the other.
    return jsonify({"status": status, "status_url": url_for("orders.order", order_id=order_id),
                    "client_secrets": [result.client_secret for _booking_id, result in results
                                       if result.status == "requires_action"]}), 201


@bp.post("/<int:order_id>/payment/check")
def check_payment(order_id):
    """Re-fetch the order's open card payments from Stripe and apply them (the webhook's second trigger)."""
    orders.sync_order(actor(), order_id)
    return redirect(url_for("orders.order", order_id=order_id))
