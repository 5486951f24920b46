"""Issue 12, paying a card order with one card entry (one PaymentIntent per booking) against localstripe."""
from datetime import UTC, datetime

import stripe
from sqlalchemy import select

from app.extensions import db
from app.models import Payment
from app.services.base import Actor
from app.services.cancellations import cancel_by_guest
from tests.helpers import YEAR
from tests.stripe_fixtures import (
    booking_status,
)


def _card_order(make_listing, make_delegation, make_user, api_as, parts=2):
    listings = [make_listing(beds=2, price_ore=50000 - 10000 * i) for i in range(parts)]
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    api = api_as(coordinator)
    response = api.post("/orders", {
        "delegation_id": delegation.id, "check_in": f"{YEAR}-06-20", "check_out": f"{YEAR}-06-22",
        "accept_contract": True, "payment_method": "card",
        "parts": [{"bed_ids": [b.id for b in listing.beds()]} for listing in listings]})
    assert response.status_code == 201, response.get_json()
    return coordinator, api, response.get_json()


def test_one_card_entry_pays_every_booking_and_one_can_be_refunded(
        make_listing, make_delegation, make_user, api_as, stripe_app, no_stripe_webhooks):
    coordinator, api, order = _card_order(make_listing, make_delegation, make_user, api_as)
    assert order["status"] == "awaiting_payment"

    paid = api.post(f"/orders/{order['id']}/payment", json={"payment_method_id": "pm_card_visa"})

    assert paid.status_code == 201, paid.get_json()
    body = paid.get_json()
    assert body["status"] == "succeeded"
    assert [(p["booking_id"], p["amount_ore"], p["status"]) for p in body["payments"]] == [
        (b["id"], b["total_ore"], "succeeded") for b in order["bookings"]]
    assert len({p["payment_intent_id"] for p in body["payments"]}) == len(order["bookings"])
    assert all(booking_status(b["id"]) == "confirmed" for b in order["bookings"])
    assert api.get(f"/orders/{order['id']}").get_json()["status"] == "confirmed"
    again = api.post(f"/orders/{order['id']}/payment", json={"payment_method_id": "pm_card_visa"})
    assert again.status_code == 409 and again.get_json()["code"] == "already_paid"
    # A refund of one booking is that booking's own payment, under its contract's terms.
    first = order["bookings"][0]
    late = datetime(YEAR, 6, 1, 12, tzinfo=UTC)  # after free cancellation: 50 % back
    cancelled = cancel_by_guest(Actor(coordinator.id, "coordinator"), first["id"], now=late)
    assert cancelled.refund_ore == first["total_ore"] // 2
    intent = db.session.scalar(select(Payment.stripe_payment_intent_id).where(Payment.booking_id == first["id"]))
    assert sum(r.amount for r in stripe.Refund.list(payment_intent=intent).data) == first["total_ore"] // 2
    other = db.session.scalar(select(Payment.stripe_payment_intent_id).where(
        Payment.booking_id == order["bookings"][1]["id"]))
    assert stripe.Refund.list(payment_intent=other).data == []
    assert booking_status(order["bookings"][1]["id"]) == "confirmed"
    assert api.get(f"/orders/{order['id']}").get_json()["status"] == "partly_cancelled"


def test_a_declined_card_pays_nothing_and_the_order_stays_payable(
        make_listing, make_delegation, make_user, api_as, stripe_app, no_stripe_webhooks):
    _coordinator, api, order = _card_order(make_listing, make_delegation, make_user, api_as)
    declined = api.post(f"/orders/{order['id']}/payment", json={"payment_method_id": "pm_card_chargeCustomerFail"})
    assert declined.status_code == 402 and declined.get_json()["code"] == "card_declined"
    assert all(booking_status(b["id"]) == "awaiting_payment" for b in order["bookings"])
    stranger = api_as(make_user("coordinator")).post(f"/orders/{order['id']}/payment",
                                                     json={"payment_method_id": "pm_card_visa"})
    assert stranger.status_code == 404
    paid = api.post(f"/orders/{order['id']}/payment", json={"payment_method_id": "pm_card_visa"})
    assert paid.status_code == 201 and paid.get_json()["status"] == "succeeded"
