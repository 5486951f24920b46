"""The card flow in a real browser: Chromium (Debian's, via Playwright) against the live app and localstripe.

A coordinator with a card booking signs in on /login, opens the pay page, types the test card
4242 4242 4242 4242 into localstripe's Stripe.js card element and pays; the booking is confirmed and
localstripe's signed webhook is recorded. A screenshot goes to test-artifacts/.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Payment, StripeEvent
from tests.helpers import PASSWORD
from tests.stripe_fixtures import (
    booking_status,
    card_booking,
    confirmations,
    wait_for,
)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def chromium():
    executable = shutil.which("chromium")
    if executable is None:
        reason = "Debian's chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + "; CI=true makes the browser test mandatory.")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_coordinator_pays_by_card_in_the_browser(chromium, stripe_webhooks, make_listing, make_delegation,
                                                 make_user):
    base = stripe_webhooks
    listing = make_listing(beds=2, price_ore=65000)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator=coordinator)
    booking = card_booking(coordinator, delegation, [b.id for b in listing.beds()])
    page = chromium.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    page.goto(f"{base}/login")
    page.fill("input[name=email]", coordinator.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]:not(.link)")
    page.wait_for_load_state()
    page.goto(f"{base}/bookings/{booking.id}/pay")
    page.wait_for_selector("#card-element input[placeholder=number]")
    page.fill("#card-element input[placeholder=number]", "4242424242424242")
    page.fill("#card-element input[placeholder=exp_month]", "12")
    page.fill("#card-element input[placeholder=exp_year]", "30")
    page.fill("#card-element input[placeholder=cvc]", "123")
    page.fill("#card-element input[placeholder=postal_code]", "62156")
    page.click("#pay-form button[type=submit]")

    page.wait_for_url(f"**/bookings/{booking.id}/payment", timeout=20000)
    intent_id = wait_for(lambda: db.session.scalar(select(Payment.stripe_payment_intent_id).where(
        Payment.booking_id == booking.id, Payment.status == "succeeded")), what="the payment")
    wait_for(lambda: db.session.scalar(select(StripeEvent.id).where(
        StripeEvent.object_id == intent_id, StripeEvent.type == "payment_intent.succeeded",
        StripeEvent.status == "processed")), what="localstripe's webhook")
    page.reload()
    page.wait_for_selector('[data-booking-status="confirmed"]')
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "card-payment-confirmed.png"), full_page=True)

    assert booking_status(booking.id) == "confirmed" and confirmations(booking.id) == 1
    assert "betalningen är mottagen" in page.inner_text("main").lower()
    assert not [e for e in errors if "Content Security Policy" in e], errors
