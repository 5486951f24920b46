"""The Stripe webhook: signatures, and idempotence under repeated, shuffled, concurrent deliveries.

Events are built and signed here exactly as Stripe signs them (HMAC-SHA256 over
"<timestamp>.<raw body>" with the endpoint secret), about PaymentIntents that really exist in
localstripe, and sent over HTTP to the app served by a real server.
"""
from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests
import stripe
from sqlalchemy import func, select

from app.extensions import db
from app.models import Payment, Refund, StripeEvent
from app.services import payments, settlement, stripe_gateway
from app.services.base import Actor
from tests.stripe_fixtures import (
    booking_status,
    card_booking,
    confirmations,
    event_payload,
    signed_headers,
)

PAYMENTS = 25
EVENT_TYPES = ("payment_intent.created", "payment_intent.processing", "charge.succeeded", "payment_intent.succeeded")
SENDERS = 8


def _paid_behind_our_back(booking, coordinator):
    """Our server asked Stripe for the money and died before hearing the answer: only an event can tell us."""
    payment_id, key, amount = payments._begin_attempt(Actor(coordinator.id, "coordinator"), booking.id,
                                                      "pm_card_visa", datetime.now(UTC))
    intent = stripe_gateway.create_intent(booking.id, payment_id, key, amount, "pm_card_visa")
    assert intent.status == "succeeded"
    return intent.to_dict()


def _event_object(event_type, intent):
    if event_type.startswith("charge."):
        return {"id": f"ch_{intent['id'][3:]}", "object": "charge", "payment_intent": intent["id"],
                "amount": intent["amount"], "currency": intent["currency"], "status": "succeeded"}
    return intent


@pytest.fixture
def world(make_season, make_listing, make_delegation, make_user):
    # One delegation holds every one of these card holds at once: lift the organisation's hold limit, which
    # is not what these tests are about.
    listing = make_listing(beds=PAYMENTS, price_ore=40000, season=make_season(max_open_holds=PAYMENTS))
    coordinator = make_user("coordinator")
    return {"bed_ids": [b.id for b in listing.beds()], "coordinator": coordinator,
            "delegation": make_delegation(coordinator=coordinator)}


def test_200_shuffled_repeated_concurrent_deliveries_confirm_each_payment_once(
        world, stripe_app, live_server, no_stripe_webhooks):
    bookings, intents = [], []
    for bed_id in world["bed_ids"]:
        booking = card_booking(world["coordinator"], world["delegation"], [bed_id])
        intents.append(_paid_behind_our_back(booking, world["coordinator"]))
        bookings.append(booking.id)
    assert {booking_status(b) for b in bookings} == {"awaiting_payment"}  # nobody has told us yet

    secret = stripe_app.config["STRIPE_WEBHOOK_SECRET"]
    events = [event_payload(kind, _event_object(kind, intent)) for intent in intents for kind in EVENT_TYPES]
    deliveries = events * 2
    random.Random(4).shuffle(deliveries)
    assert len(events) == 100 and len(deliveries) == 200

    def send(payload):
        return requests.post(f"{live_server}/stripe/webhook", data=payload, headers=signed_headers(payload, secret),
                             timeout=60).status_code

    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        answers = list(pool.map(send, deliveries))

    assert [a for a in answers if not 200 <= a < 300] == []
    db.session.rollback()
    for booking_id in bookings:
        assert booking_status(booking_id) == "confirmed"
        assert confirmations(booking_id) == 1
    assert db.session.scalar(select(func.count(Payment.id)).where(Payment.status == "succeeded")) == PAYMENTS
    assert db.session.scalar(select(func.count(StripeEvent.id)).where(StripeEvent.status == "processed")) == 100
    assert db.session.scalar(select(func.count(Refund.id))) == 0
    # One more round of every event changes nothing and still answers 2xx.
    assert {send(payload) for payload in events[:10]} == {200}
    assert sum(confirmations(b) for b in bookings) == PAYMENTS


def test_tampered_or_stale_signatures_are_refused_and_change_nothing(world, client, stripe_app, no_stripe_webhooks):
    booking = card_booking(world["coordinator"], world["delegation"], world["bed_ids"][:1])
    intent = _paid_behind_our_back(booking, world["coordinator"])
    secret = stripe_app.config["STRIPE_WEBHOOK_SECRET"]
    payload = event_payload("payment_intent.succeeded", intent)

    tampered_body = payload.replace(b'"livemode": false', b'"livemode": true')
    wrong_secret = signed_headers(payload, "whsec_not_ours")
    stale = signed_headers(payload, secret, timestamp=int(time.time()) - 301)
    attempts = [
        (tampered_body, signed_headers(payload, secret)),
        (payload, wrong_secret),
        (payload, stale),
        (payload, {"Content-Type": "application/json"}),
        (payload, {"Stripe-Signature": "t=abc,v1=zzz", "Content-Type": "application/json"}),
    ]
    for body, headers in attempts:
        response = client.post("/stripe/webhook", data=body, headers=headers)
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["code"] == "invalid_signature"

    assert db.session.scalar(select(func.count(StripeEvent.id))) == 0
    assert booking_status(booking.id) == "awaiting_payment" and confirmations(booking.id) == 0
    # The genuine event, signed within the 5 minutes, is accepted (and a CSRF token is not needed).
    fresh = client.post("/stripe/webhook", data=payload, headers=signed_headers(payload, secret,
                                                                                   int(time.time()) - 240))
    assert fresh.status_code == 200
    assert booking_status(booking.id) == "confirmed" and confirmations(booking.id) == 1


def test_events_about_other_things_are_acknowledged(client, stripe_app):
    secret = stripe_app.config["STRIPE_WEBHOOK_SECRET"]
    for obj, kind in (({"id": "cus_x", "object": "customer"}, "customer.created"),
                      ({"id": "pi_unknown", "object": "payment_intent", "status": "succeeded"},
                       "payment_intent.succeeded")):
        payload = event_payload(kind, obj)
        first = client.post("/stripe/webhook", data=payload, headers=signed_headers(payload, secret))
        again = client.post("/stripe/webhook", data=payload, headers=signed_headers(payload, secret))
        assert first.status_code == 200 and again.status_code == 200
    # An intent Stripe cannot find is recorded as a failed event for admins (and retried by reconcile).
    failed = db.session.scalar(select(StripeEvent).where(StripeEvent.object_id == "pi_unknown"))
    assert failed.status == "failed" and failed.attempts == 2 and failed.error


def test_a_payment_for_an_already_confirmed_booking_is_refunded(world, client, stripe_app, no_stripe_webhooks):
    booking = card_booking(world["coordinator"], world["delegation"], world["bed_ids"][:1])
    first = _paid_behind_our_back(booking, world["coordinator"])
    settlement.apply_intent(stripe_gateway.fetch_intent(first["id"]))
    assert booking_status(booking.id) == "confirmed"
    # A second tab paid too, before it learnt that the booking was paid.
    row = Payment(booking_id=booking.id, amount_ore=booking.total_ore, status="created")
    db.session.add(row)
    db.session.commit()
    second = stripe_gateway.create_intent(booking.id, row.id, row.attempt_key, row.amount_ore, "pm_card_visa")
    secret = stripe_app.config["STRIPE_WEBHOOK_SECRET"]
    payload = event_payload("payment_intent.succeeded", second.to_dict())

    assert client.post("/stripe/webhook", data=payload, headers=signed_headers(payload, secret)).status_code == 200

    refund = db.session.scalar(select(Refund).where(Refund.payment_id == row.id))
    assert refund.reason == "duplicate_payment" and refund.status == "succeeded"
    assert refund.amount_ore == booking.total_ore
    assert sum(r.amount for r in stripe.Refund.list(payment_intent=second.id).data) == booking.total_ore
    assert confirmations(booking.id) == 1
