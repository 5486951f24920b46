"""Card payments against a real localstripe: confirmation by webhook, declines, holds, refunds.

Each test runs on SQLite and PostgreSQL (conftest's `app`). Nothing is mocked: the payment
service talks to localstripe over HTTP with the official SDK, and localstripe's own signed
webhooks reach the app served by a real HTTP server.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import requests
import stripe
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, BedNight, Booking, OutboxEmail, Payment, Refund, StripeEvent
from app.services import seasons
from app.services.base import Actor
from app.services.booking import create_booking
from app.services.cancellations import cancel_by_guest, cancel_by_host
from app.services.errors import DomainError
from app.services.jobs import expire_and_cancel, expire_holds
from app.services.ledger import refundable_ore
from app.services.refunds import process_pending_refunds, request_refund
from tests.helpers import YEAR, csrf_from
from tests.stripe_fixtures import (
    CHECK_IN,
    CHECK_OUT,
    authenticate_3ds,
    booking_status,
    card_booking,
    card_method,
    confirmations,
    wait_for,
)

THREE_D_SECURE_CARD = "4000002760003184"


@pytest.fixture
def world(make_listing, make_delegation, make_user):
    """A published listing with 4 beds, and a delegation whose coordinator can book them."""
    listing = make_listing(beds=4, price_ore=50000)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator=coordinator)
    return {"listing": listing, "bed_ids": [b.id for b in listing.beds()], "coordinator": coordinator,
            "delegation": delegation, "host_id": listing.host_id}


def _payments_of(booking_id):
    db.session.rollback()
    return db.session.scalars(select(Payment).where(Payment.booking_id == booking_id).order_by(Payment.id)).all()


def _stripe_refunded(intent_id) -> int:
    return sum(r.amount for r in stripe.Refund.list(payment_intent=intent_id).data)


def _event_processed(intent_id, event_type="payment_intent.succeeded"):
    return db.session.scalar(select(StripeEvent).where(
        StripeEvent.object_id == intent_id, StripeEvent.type == event_type, StripeEvent.status == "processed"))


# ---------------------------------------------------------------------------------------------
# Paying through the API
# ---------------------------------------------------------------------------------------------


def test_api_card_payment_confirms_once_and_the_webhook_changes_nothing(world, api_as, stripe_webhooks):
    booking = card_booking(world["coordinator"], world["delegation"], world["bed_ids"][:2])
    assert booking.status == "awaiting_payment"
    api = api_as(world["coordinator"])

    response = api.post(f"/bookings/{booking.id}/payment", json={"payment_method_id": "pm_card_visa"})

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "succeeded" and body["amount_ore"] == booking.total_ore == 2 * 2 * 50000
    assert body["payment_intent_id"].startswith("pi_") and body["client_secret"]
    # localstripe's signed payment_intent.succeeded arrives at the live server and is recorded...
    wait_for(lambda: _event_processed(body["payment_intent_id"]), what="the webhook")
    # ...and the booking is confirmed exactly once, its held bed-nights now booked.
    assert booking_status(booking.id) == "confirmed"
    assert confirmations(booking.id) == 1
    states = set(db.session.scalars(select(BedNight.state).where(BedNight.booking_id == booking.id)))
    assert states == {"booked"}
    shown = api.get(f"/bookings/{booking.id}").get_json()
    assert shown["payments"] == [{"payment_intent_id": body["payment_intent_id"], "status": "succeeded",
                                  "amount_ore": booking.total_ore, "refunded_ore": 0}]
    again = api.post(f"/bookings/{booking.id}/payment", json={"payment_method_id": "pm_card_visa"})
    assert again.status_code == 409 and again.get_json()["code"] == "already_paid"


def test_three_d_secure_payment_is_confirmed_by_the_webhook_alone(world, api_as, stripe_webhooks, localstripe_base):
    booking = card_booking(world["coordinator"], world["delegation"], world["bed_ids"][:1])
    api = api_as(world["coordinator"])

    response = api.post(f"/bookings/{booking.id}/payment",
                        json={"payment_method_id": card_method(THREE_D_SECURE_CARD)})

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "requires_action" and body["client_secret"]
    assert booking_status(booking.id) == "awaiting_payment"
    # The browser finishes 3-D Secure with Stripe.js; only Stripe's webhook tells us the money is there.
    authenticate_3ds(localstripe_base, body["payment_intent_id"], body["client_secret"])
    wait_for(lambda: booking_status(booking.id) == "confirmed", what="confirmation by webhook")
    assert confirmations(booking.id) == 1
    assert _payments_of(booking.id)[0].status == "succeeded"


def test_declined_card_answers_402_and_the_booking_stays_payable(world, api_as, stripe_app):
    booking = card_booking(world["coordinator"], world["delegation"], world["bed_ids"][:2])
    api = api_as(world["coordinator"])

    declined = api.post(f"/bookings/{booking.id}/payment", json={"payment_method_id": "pm_card_chargeCustomerFail"},
                        headers={"Accept-Language": "en"})

    assert declined.status_code == 402
    problem = declined.get_json()
    assert declined.mimetype == "application/problem+json"
    assert problem["code"] == "card_declined" and "declined" in problem["detail"].lower()
    assert "try another card" in problem["detail"]
    assert booking_status(booking.id) == "awaiting_payment"
    assert [p.status for p in _payments_of(booking.id)] == ["failed"]
    assert set(db.session.scalars(select(BedNight.state).where(BedNight.booking_id == booking.id))) == {"held"}
    # Still payable until the hold expires: another card goes through.
    paid = api.post(f"/bookings/{booking.id}/payment", json={"payment_method_id": "pm_card_visa"})
    assert paid.status_code == 201 and paid.get_json()["status"] == "succeeded"
    assert booking_status(booking.id) == "confirmed" and confirmations(booking.id) == 1


def test_payment_route_checks_who_and_what(world, api_as, make_user, stripe_app):
    booking = card_booking(world["coordinator"], world["delegation"], world["bed_ids"][:1])
    stranger = api_as(make_user("coordinator"))
    assert stranger.post(f"/bookings/{booking.id}/payment",
                         json={"payment_method_id": "pm_card_visa"}).status_code == 404
    assert api_as().post(f"/bookings/{booking.id}/payment", json={"payment_method_id": "x"}).status_code == 401
    bad = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/payment", json={"payment_method_id": "4242"})
    assert bad.status_code == 422 and "payment_method_id" in bad.get_json()["errors"]
    unknown = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/payment",
                                                json={"payment_method_id": "pm_doesnotexist"})
    assert unknown.status_code == 422
    assert booking_status(booking.id) == "awaiting_payment"


# ---------------------------------------------------------------------------------------------
# Holds that lapse
# ---------------------------------------------------------------------------------------------


def test_expired_hold_releases_bed_nights_and_cancels_the_intent(world, api_as, runner, stripe_app,
                                                                 no_stripe_webhooks, make_delegation):
    booking = card_booking(world["coordinator"], world["delegation"], world["bed_ids"][:2])
    response = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/payment",
                                                 json={"payment_method_id": card_method(THREE_D_SECURE_CARD)})
    intent_id = response.get_json()["payment_intent_id"]
    assert stripe.PaymentIntent.retrieve(intent_id).status == "requires_action"

    later = booking.expires_at + timedelta(seconds=1)
    expired = expire_and_cancel(now=later)

    assert expired == [booking.id]
    assert booking_status(booking.id) == "expired"
    assert set(db.session.scalars(select(BedNight.state).where(BedNight.booking_id == booking.id))) == {"released"}
    assert stripe.PaymentIntent.retrieve(intent_id).status == "canceled"
    assert [p.status for p in _payments_of(booking.id)] == ["canceled"]
    # The beds are for sale again.
    other = make_delegation()
    again = card_booking(other.coordinator, other, world["bed_ids"][:2], now=later)
    assert again.status == "awaiting_payment"


def test_late_payment_on_taken_beds_is_refunded_in_full(world, api_as, stripe_webhooks, localstripe_base,
                                                        make_delegation, client, login):
    booking = card_booking(world["coordinator"], world["delegation"], world["bed_ids"][:2])
    body = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/payment", json={
        "payment_method_id": card_method(THREE_D_SECURE_CARD)}).get_json()
    # The hold lapses while the guest is in 3-D Secure, and another delegation takes the beds.
    rival = make_delegation()
    taken = card_booking(rival.coordinator, rival, world["bed_ids"][:2], now=booking.expires_at + timedelta(minutes=1))
    assert booking_status(booking.id) == "expired"

    authenticate_3ds(localstripe_base, body["payment_intent_id"], body["client_secret"])

    refund = wait_for(lambda: db.session.scalar(select(Refund).where(
        Refund.booking_id == booking.id, Refund.status == "succeeded")), what="the automatic refund")
    assert refund.amount_ore == booking.total_ore and refund.reason == "late_payment_beds_taken"
    assert _stripe_refunded(body["payment_intent_id"]) == booking.total_ore
    late = db.session.get(Booking, booking.id)
    assert late.status == "expired" and late.refund_ore == booking.total_ore
    assert late.refund_reason == "late_payment_beds_taken"
    login(world["coordinator"])
    page = client.get(f"/bookings/{booking.id}/payment").get_data(as_text=True)
    # The reason stands above the payments and again in the refunds table, in the page's language.
    assert page.count("hade hunnit bokas av någon annan. Hela beloppet återbetalas.") == 2
    assert db.session.scalar(select(func.count(OutboxEmail.id)).where(
        OutboxEmail.to_address == world["coordinator"].email, OutboxEmail.subject.contains("återbetalning"))) == 1
    assert booking_status(taken.id) == "awaiting_payment"
    assert confirmations(booking.id) == 0


def test_late_payment_past_the_organisations_limit_is_refunded_not_booked(
        world, api_as, stripe_webhooks, localstripe_base, admin_actor, make_listing):
    """A lapsed hold's beds are free, but the organisation booked up to its limit meanwhile: the late money
    cannot book them again (issue 9, hoarding), so it is refunded in full."""
    seasons.update_season(admin_actor, YEAR, {"max_beds_per_organisation": 4})
    booking = card_booking(world["coordinator"], world["delegation"], world["bed_ids"][:2])
    body = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/payment", json={
        "payment_method_id": card_method(THREE_D_SECURE_CARD)}).get_json()
    later = booking.expires_at + timedelta(minutes=1)
    expire_holds(now=later)
    # The same organisation takes its whole limit elsewhere on invoice (2 beds x 2 nights = 4 bed-nights).
    other = make_listing(beds=2, price_ore=50000)
    create_booking(Actor(world["coordinator"].id, "coordinator"), delegation_id=world["delegation"].id,
                   bed_ids=[b.id for b in other.beds()], check_in=CHECK_IN, check_out=CHECK_OUT,
                   accept_contract=True, payment_method="invoice", now=later)

    authenticate_3ds(localstripe_base, body["payment_intent_id"], body["client_secret"])

    refund = wait_for(lambda: db.session.scalar(select(Refund).where(
        Refund.booking_id == booking.id, Refund.status == "succeeded")), what="the automatic refund")
    assert refund.amount_ore == booking.total_ore and refund.reason == "late_payment_over_limit"
    assert booking_status(booking.id) == "expired"
    assert set(db.session.scalars(select(BedNight.state).where(BedNight.booking_id == booking.id))) == {"released"}
    assert confirmations(booking.id) == 0


def test_late_payment_on_free_beds_takes_them_back(world, api_as, stripe_webhooks, localstripe_base):
    booking = card_booking(world["coordinator"], world["delegation"], world["bed_ids"][:2])
    body = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/payment", json={
        "payment_method_id": card_method(THREE_D_SECURE_CARD)}).get_json()
    expire_holds(now=booking.expires_at + timedelta(minutes=1))  # lapsed, but the intent was not cancelled yet
    assert booking_status(booking.id) == "expired"

    authenticate_3ds(localstripe_base, body["payment_intent_id"], body["client_secret"])

    wait_for(lambda: booking_status(booking.id) == "confirmed", what="the late confirmation")
    assert set(db.session.scalars(select(BedNight.state).where(BedNight.booking_id == booking.id))) == {"booked"}
    assert confirmations(booking.id) == 1
    assert db.session.scalar(select(func.count(Refund.id)).where(Refund.booking_id == booking.id)) == 0


def test_paying_after_expiry_on_taken_beds_answers_409_hold_expired(world, api_as, stripe_app, make_delegation):
    booking = card_booking(world["coordinator"], world["delegation"], world["bed_ids"][:1])
    rival = make_delegation()
    card_booking(rival.coordinator, rival, world["bed_ids"][:1], now=booking.expires_at + timedelta(minutes=1))

    response = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/payment",
                                                 json={"payment_method_id": "pm_card_visa"})

    assert response.status_code == 409 and response.get_json()["code"] == "hold_expired"
    assert _payments_of(booking.id) == []


# ---------------------------------------------------------------------------------------------
# Other triggers: the pay page's return and reconcile
# ---------------------------------------------------------------------------------------------


def test_reconcile_repairs_a_missed_webhook(world, api_as, runner, no_stripe_webhooks, localstripe_base):
    booking = card_booking(world["coordinator"], world["delegation"], world["bed_ids"][:1])
    body = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/payment", json={
        "payment_method_id": card_method(THREE_D_SECURE_CARD)}).get_json()
    authenticate_3ds(localstripe_base, body["payment_intent_id"], body["client_secret"])
    assert booking_status(booking.id) == "awaiting_payment"  # the guest closed the tab; the event was lost

    result = runner.invoke(args=["payments", "reconcile"])

    assert result.exit_code == 0, result.output
    assert "payment intents checked: 1" in result.output and "payments changed: 1" in result.output
    assert booking_status(booking.id) == "confirmed" and confirmations(booking.id) == 1
    assert runner.invoke(args=["payments", "reconcile"]).exit_code == 0
    assert confirmations(booking.id) == 1


def test_status_page_is_the_second_trigger(world, client, login, api_as, no_stripe_webhooks, localstripe_base):
    booking = card_booking(world["coordinator"], world["delegation"], world["bed_ids"][:1])
    body = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/payment", json={
        "payment_method_id": card_method(THREE_D_SECURE_CARD)}).get_json()
    authenticate_3ds(localstripe_base, body["payment_intent_id"], body["client_secret"])
    assert booking_status(booking.id) == "awaiting_payment"  # no webhook in this test

    login(world["coordinator"])
    audit_rows = db.session.scalar(select(func.count()).select_from(AuditEntry))
    page = client.get(f"/bookings/{booking.id}/payment")

    assert page.status_code == 200  # a GET only reads: nothing changes until someone asks
    assert booking_status(booking.id) == "awaiting_payment" and confirmations(booking.id) == 0
    assert [p.status for p in _payments_of(booking.id)] == ["requires_action"]
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == audit_rows
    checked = client.post(f"/bookings/{booking.id}/payment/check", data={"csrf_token": csrf_from(page)},
                          follow_redirects=True)
    assert 'data-booking-status="confirmed"' in checked.get_data(as_text=True)
    assert booking_status(booking.id) == "confirmed" and confirmations(booking.id) == 1
    receipt = client.get(f"/bookings/{booking.id}/receipt")
    assert receipt.status_code == 200 and body["payment_intent_id"] in receipt.get_data(as_text=True)


# ---------------------------------------------------------------------------------------------
# Refunds
# ---------------------------------------------------------------------------------------------


def _paid_booking(world, api_as, beds=2):
    booking = card_booking(world["coordinator"], world["delegation"], world["bed_ids"][:beds])
    body = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/payment",
                                             json={"payment_method_id": "pm_card_visa"}).get_json()
    assert body["status"] == "succeeded"
    return db.session.get(Booking, booking.id), body["payment_intent_id"]


def test_host_cancellation_refunds_the_full_amount(world, api_as, stripe_app, no_stripe_webhooks):
    booking, intent_id = _paid_booking(world, api_as)

    cancelled = cancel_by_host(Actor(world["host_id"], "host"), booking.id, "Vattenskada")

    assert cancelled.refund_ore == booking.total_ore
    refunds = db.session.scalars(select(Refund).where(Refund.booking_id == booking.id)).all()
    assert [(r.status, r.amount_ore, r.reason) for r in refunds] == [
        ("succeeded", booking.total_ore, "host_cancellation")]
    assert _stripe_refunded(intent_id) == booking.total_ore


def test_guest_cancellation_refunds_by_the_terms_and_no_refund_exceeds_what_is_left(
        world, api_as, stripe_app, no_stripe_webhooks, admin_actor):
    booking, intent_id = _paid_booking(world, api_as)
    late = datetime(YEAR, 6, 1, 12, tzinfo=UTC)  # after free cancellation: 50 % back

    cancelled = cancel_by_guest(Actor(world["coordinator"].id, "coordinator"), booking.id, now=late)

    half = booking.total_ore // 2
    assert cancelled.refund_ore == half
    assert _stripe_refunded(intent_id) == half
    payment = _payments_of(booking.id)[0]
    assert refundable_ore(payment.id) == booking.total_ore - half

    with pytest.raises(DomainError) as too_much:
        request_refund(admin_actor, booking.id, booking.total_ore)
    assert too_much.value.code == "refund_exceeds_remaining"
    assert too_much.value.facts["remaining_ore"] == booking.total_ore - half
    rest = request_refund(admin_actor, booking.id, booking.total_ore - half)
    assert rest.status == "succeeded"
    with pytest.raises(DomainError):
        request_refund(admin_actor, booking.id, 1)
    # A refund queued twice by mistake is stopped by our own check (localstripe would pay it).
    db.session.add(Refund(booking_id=booking.id, payment_id=payment.id, amount_ore=half, reason="admin",
                          status="pending"))
    db.session.commit()
    assert process_pending_refunds(booking.id) == []
    assert _stripe_refunded(intent_id) == booking.total_ore
    statuses = sorted(r.status for r in db.session.scalars(select(Refund).where(Refund.booking_id == booking.id)))
    assert statuses == ["rejected", "succeeded", "succeeded"]


def test_failed_refund_is_visible_and_retried(world, api_as, stripe_app, no_stripe_webhooks, client, login,
                                              make_admin, runner):
    booking, intent_id = _paid_booking(world, api_as)
    stripe_app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"  # Stripe unreachable during the cancellation
    cancel_by_host(Actor(world["host_id"], "host"), booking.id, "Stormskada")
    refund = db.session.scalar(select(Refund).where(Refund.booking_id == booking.id))
    assert refund.status == "failed" and refund.last_error and refund.attempts == 1

    secret = pyotp.random_base32()
    login(make_admin(totp_secret=secret), otp=pyotp.TOTP(secret).now())
    listing = client.get("/admin/payments")
    assert listing.status_code == 200 and "Misslyckades" in listing.get_data(as_text=True)

    stripe_app.config["STRIPE_API_BASE"] = stripe_app.config["STRIPE_JS_URL"].split("/js.stripe.com")[0]
    result = runner.invoke(args=["payments", "retry-refunds"])
    assert result.exit_code == 0 and f": {refund.id}" in result.output
    db.session.expire_all()
    assert db.session.get(Refund, refund.id).status == "succeeded"
    assert _stripe_refunded(intent_id) == booking.total_ore


# ---------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------


def test_pay_page_loads_stripe_js_only_there_and_has_no_inline_script(world, client, login, stripe_app):
    booking = card_booking(world["coordinator"], world["delegation"], world["bed_ids"][:1])
    login(world["coordinator"])

    page = client.get(f"/bookings/{booking.id}/pay")

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    js = stripe_app.config["STRIPE_JS_URL"]
    origin = js.split("/js.stripe.com")[0]
    assert f'<script src="{js}"></script>' in html and "js/pay.js" in html
    assert 'data-client-secret="seti_' in html
    assert 'data-locale="sv"' in html and "boka med faktura" in html  # Stripe.js words errors in Swedish
    assert "<script>" not in html and "style=" not in html
    assert origin in page.headers["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    other = client.get(f"/bookings/{booking.id}/payment")
    assert origin not in other.headers["Content-Security-Policy"]


def test_pay_page_is_only_for_the_bookings_coordinator(world, client, login, make_user, stripe_app):
    booking = card_booking(world["coordinator"], world["delegation"], world["bed_ids"][:1])
    login(make_user("coordinator"))
    assert client.get(f"/bookings/{booking.id}/pay").status_code == 404
    assert client.get(f"/bookings/{booking.id}/payment").status_code == 404


def test_stripe_test_server_is_localstripe(stripe_app, localstripe_base):
    """Guard: these tests never reach the real Stripe."""
    assert stripe.api_base == localstripe_base
    assert requests.get(f"{localstripe_base}/js.stripe.com/v3/", timeout=5).text.count("localstripe") > 1
