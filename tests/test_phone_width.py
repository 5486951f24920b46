"""At 390 px (a phone) the host's bookings, the admin's payments and a member's itinerary fit the screen, and an
empty error says nothing.

Debian's Chromium via tests/browser.py: the pages hold real rows (bookings, card payments, a failed
refund and a failed Stripe event), and the document must be no wider than the window, with each
row's status and its cancel or retry button inside it.
"""
from __future__ import annotations

from datetime import date

import pytest

from app.extensions import db
from app.models import Payment, Refund, StripeEvent
from app.services import booking as booking_service
from app.services import itineraries, rooming
from app.services.base import Actor
from tests.browser import (
    bookable_world,
    chromium,
    live_app,
    main_text,
    make_coordinator,
    make_delegation,
    new_tab,
    sign_in,
    totp_now,
)
from tests.helpers import YEAR

PHONE = 390


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def live(tmp_path):
    with live_app(tmp_path / "live") as served:
        yield served


def _world():
    world = bookable_world()
    coordinator = make_coordinator()
    delegation = make_delegation(coordinator)
    booking = booking_service.create_booking(
        Actor(coordinator.id, "coordinator"), delegation_id=delegation.id, bed_ids=[b.id for b in world.listing.beds()],
        check_in=date(YEAR, 6, 21), check_out=date(YEAR, 6, 23), accept_contract=True, payment_method="invoice")
    db.session.add(Payment(booking_id=booking.id, amount_ore=130000, status="failed",
                           stripe_payment_intent_id="pi_3QmVeryLongPaymentIntentIdentifierAbCdEfGh",
                           failure_message="Your card was declined. Try another card or pay by invoice."))
    db.session.add(Refund(booking_id=booking.id, amount_ore=65000, reason="host_cancelled", status="failed",
                          attempts=2, last_error="Stripe could not be reached (connection reset by peer)"))
    db.session.add(StripeEvent(event_id="evt_1QmVeryLongStripeEventIdentifierXyZ", type="payment_intent.succeeded",
                               object_id="pi_3QmVeryLongPaymentIntentIdentifierAbCdEfGh", status="failed",
                               error="KeyError: 'metadata'"))
    db.session.commit()
    return world, booking


def _fits(page) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


def _inside(page, selector: str) -> None:
    boxes = page.locator(selector)
    assert boxes.count() > 0, selector
    for i in range(boxes.count()):
        box = boxes.nth(i).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE, (selector, box)


def test_host_bookings_and_admin_payments_fit_a_phone(browser, live):
    world, booking = _world()
    host = new_tab(browser, live.base_url, width=PHONE, height=844)
    sign_in(host.page, world.host.email)
    host.page.goto("/host/bookings")
    assert booking.contract.number in main_text(host.page)
    scroll, inner = _fits(host.page)
    assert scroll <= inner, f"/host/bookings is {scroll} px wide in a {inner} px window"
    _inside(host.page, "main table .badge")
    _inside(host.page, "main a.button.danger")
    host.close()

    admin = new_tab(browser, live.base_url, width=PHONE, height=844)
    sign_in(admin.page, world.admin.email, otp=totp_now())
    admin.page.goto("/admin/payments")
    assert "pi_3QmVeryLong" in main_text(admin.page)
    scroll, inner = _fits(admin.page)
    assert scroll <= inner, f"/admin/payments is {scroll} px wide in a {inner} px window"
    _inside(admin.page, "main table .badge")
    _inside(admin.page, "main table button")
    admin.close()


def test_an_empty_error_region_shows_no_warning_sign(browser, live):
    tab = new_tab(browser, live.base_url)
    tab.page.goto("/login")
    shown = tab.page.evaluate("""() => {
        const empty = document.createElement('p'); empty.className = 'error'; empty.id = 'card-errors';
        const full = document.createElement('p'); full.className = 'error'; full.textContent = 'Kortet nekades.';
        document.querySelector('main').append(empty, full);
        return [empty.getBoundingClientRect().height, getComputedStyle(full).display];
    }""")
    assert shown[0] == 0, "the card field's empty error region still shows its ⚠"
    assert shown[1] != "none"
    tab.close()


def test_a_members_itinerary_fits_a_phone_and_prints_without_the_menus(browser, live):
    world, booking = _world()
    member = booking.delegation.members[0]
    rooming.assign_rooming(Actor(booking.coordinator_id, "coordinator"), booking.id,
                           [{"bed_id": booking.lines[0].bed_id, "member_id": member.id}])
    path = "/itinerary/" + member.itinerary_token
    assert itineraries.itinerary_url(member).endswith(path)
    tab = new_tab(browser, live.base_url, width=PHONE, height=844)
    tab.page.goto(path)
    text = main_text(tab.page)
    assert member.name in text and "+46 498 123 456" in text and world.listing.title in text
    scroll, inner = _fits(tab.page)
    assert scroll <= inner, f"the itinerary is {scroll} px wide in a {inner} px window"
    _inside(tab.page, "main .itinerary-stay dd")
    tab.page.emulate_media(media="print")
    assert not tab.page.locator(".site-header nav").is_visible()
    assert tab.page.locator(".itinerary-stay").first.evaluate("e => getComputedStyle(e).breakInside") == "avoid"
    assert not tab.errors, tab.errors
    tab.close()
