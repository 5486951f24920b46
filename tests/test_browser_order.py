"""Issue 12, a whole group proposal booked in one step, in real Chromium: search, review every contract, accept once,
book, the order page; and one card entry paying every booking of a card order (localstripe's Stripe.js).

Each step of the invoice journey saves a screenshot (desktop and phone width, nothing wider than the phone) to
test-artifacts/journeys/order/, and axe-core checks the review and the order page at both widths.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Booking, Order, Payment, StripeEvent
from app.services import orders
from app.services.base import Actor
from tests.browser import (
    FIRST_NIGHT,
    PHONE,
    Screenshots,
    axe_violations,
    bookable_world,
    chromium,
    describe,
    fresh,
    live_app,
    main_text,
    make_coordinator,
    make_delegation,
    make_listing,
    new_tab,
    sign_in,
)
from tests.helpers import YEAR
from tests.stripe_fixtures import CHECK_IN, CHECK_OUT, booking_status, wait_for


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def live(tmp_path):
    with live_app(tmp_path / "live") as served:
        yield served


def assert_accessible(page) -> None:
    """axe-core finds no serious or critical WCAG 2 A/AA violation, at desktop and at phone width."""
    desktop = page.viewport_size
    for size in (desktop, PHONE):
        page.set_viewport_size(size)
        violations = axe_violations(page)
        assert not violations, f"{page.url} at {size['width']} px:\n{describe(violations)}"
    page.set_viewport_size(desktop)


def test_coordinator_books_a_whole_proposal_in_one_step(browser, live):
    world = bookable_world()  # "Rum vid Strandgatan": 2 beds at 650 kr
    make_listing(world.host, world.season, title="Stuga vid Hamnen", beds=2, price_ore=55000, walking_minutes=12)
    coordinator = make_coordinator()
    make_delegation(coordinator)
    tab = new_tab(browser, live.base_url)
    page, shot = tab.page, Screenshots(tab.page, "order")

    sign_in(page, coordinator.email)
    page.get_by_role("navigation", name="Samordnarens meny").get_by_role("link", name="Sök bäddar").click()
    page.get_by_label("Incheckning").fill(FIRST_NIGHT.isoformat())
    page.get_by_label("Utcheckning").fill(f"{YEAR}-06-22")
    page.get_by_label("Antal bäddar").fill("4")
    page.get_by_role("button", name="Sök", exact=True).click()
    proposal = page.locator("article.proposal").first
    assert "Förslag 1: 2 boenden" in proposal.inner_text()
    assert "4 800 kr" in proposal.inner_text().replace("\u00a0", " ")
    shot("proposal")

    proposal.get_by_role("button", name="Boka hela förslaget").click()
    page.wait_for_url("**/coordinator/orders/review?*")
    contracts = page.locator("article.order-part")
    assert contracts.count() == 2
    assert "Avtal 1 av 2: Rum vid Strandgatan" in contracts.nth(0).inner_text()
    assert "Avtal 2 av 2: Stuga vid Hamnen" in contracts.nth(1).inner_text()
    assert "Karin Lindqvist" in contracts.nth(0).inner_text()
    assert page.locator("#order-total").inner_text().replace("\u00a0", " ") == "4 800 kr"
    assert page.get_by_role("region", name=re.compile("Standardvillkor")).count() == 1  # the terms once
    assert page.get_by_label("Faktura").is_checked()
    shot("review")
    assert_accessible(page)

    page.get_by_role("button", name="Boka hela förslaget bindande").click()  # not yet accepted
    assert "Kryssa i att du accepterar avtalen för att boka." in main_text(page)
    fresh()
    assert db.session.scalar(select(Order.id)) is None
    page.get_by_label("Jag accepterar de bindande avtalen").check()
    shot("accepted")
    page.get_by_role("button", name="Boka hela förslaget bindande").click()
    page.wait_for_url(re.compile(r"/coordinator/orders/\d+$"))
    assert "Beställningen är gjord: 2 bokningar." in page.inner_text(".flashes")
    assert page.locator("[data-order-status]").inner_text() == "Bekräftad"
    cards = page.locator("li.order-booking")
    assert cards.count() == 2
    numbers = re.findall(fr"SP-{YEAR}-\d+", main_text(page))
    assert len(set(numbers)) == 2
    shot("order")
    assert_accessible(page)

    pdf = cards.first.get_by_role("link", name="Avtalet (PDF)")
    response = page.request.get(pdf.get_attribute("href"))
    assert response.status == 200 and response.body().startswith(b"%PDF")
    page.get_by_role("navigation", name="Samordnarens meny").get_by_role("link", name="Mina bokningar").click()
    page.get_by_role("link", name=re.compile(r"Beställning \d+")).first.click()
    page.wait_for_url(re.compile(r"/coordinator/orders/\d+$"))

    fresh()
    order = db.session.scalar(select(Order))
    bookings = db.session.scalars(select(Booking).where(Booking.order_id == order.id)).all()
    assert page.url.endswith(f"/coordinator/orders/{order.id}")
    assert sorted(b.contract.number for b in bookings) == sorted(set(numbers))
    assert {b.status for b in bookings} == {"confirmed"} and order.total_ore == 480000
    assert not tab.csp_errors(), tab.errors
    tab.close()


def _paid_intents(booking_ids: list[int]) -> list[str] | None:
    """The PaymentIntents that paid the bookings, once every booking has one."""
    intents = db.session.scalars(select(Payment.stripe_payment_intent_id).where(
        Payment.booking_id.in_(booking_ids), Payment.status == "succeeded")).all()
    return list(intents) if len(intents) == len(booking_ids) else None


def test_coordinator_pays_a_whole_order_with_one_card_in_the_browser(browser, stripe_webhooks, make_listing,
                                                                     make_delegation, make_user):
    base = stripe_webhooks
    listings = [make_listing(beds=2, price_ore=65000), make_listing(beds=1, price_ore=45000)]
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator=coordinator)
    order = orders.create_order(
        Actor(coordinator.id, "coordinator"), delegation_id=delegation.id, check_in=CHECK_IN, check_out=CHECK_OUT,
        parts=[{"bed_ids": [b.id for b in listing.beds()]} for listing in listings], accept_contract=True,
        payment_method="card")
    booking_ids = [b.id for b in order.bookings]
    tab = new_tab(browser, base)
    page = tab.page

    sign_in(page, coordinator.email)
    page.goto(f"/coordinator/orders/{order.id}")
    page.get_by_role("link", name="Betala hela beställningen med kort").click()
    page.wait_for_url(f"**/coordinator/orders/{order.id}/pay")
    assert "3 500 kr" in main_text(page).replace("\u00a0", " ")  # (2 x 650 + 450) x 2 nights, one card entry
    page.wait_for_selector("#card-element input[placeholder=number]")
    page.fill("#card-element input[placeholder=number]", "4242424242424242")
    page.fill("#card-element input[placeholder=exp_month]", "12")
    page.fill("#card-element input[placeholder=exp_year]", "30")
    page.fill("#card-element input[placeholder=cvc]", "123")
    page.fill("#card-element input[placeholder=postal_code]", "62156")
    page.click("#pay-form button[type=submit]")

    page.wait_for_url(f"**/coordinator/orders/{order.id}", timeout=20000)
    intents = wait_for(lambda: _paid_intents(booking_ids), what="a payment for every booking")
    wait_for(lambda: len(db.session.scalars(select(StripeEvent.id).where(
        StripeEvent.object_id.in_(intents), StripeEvent.type == "payment_intent.succeeded",
        StripeEvent.status == "processed")).all()) == len(booking_ids), what="localstripe's webhooks")
    page.reload()
    page.wait_for_selector('[data-order-status="confirmed"]')

    assert [booking_status(b) for b in booking_ids] == ["confirmed"] * len(booking_ids)
    methods = db.session.scalars(select(Payment.payment_method_id).where(Payment.booking_id.in_(booking_ids))).all()
    assert len(methods) == len(booking_ids) and len(set(methods)) == 1  # one card entry
    assert "betalningen är mottagen och alla bokningar är bekräftade" in main_text(page).lower()
    assert not tab.csp_errors(), tab.errors
    tab.close()

