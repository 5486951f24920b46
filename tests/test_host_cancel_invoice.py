"""Issue 9: a host cancellation refunds only money actually received; an unpaid invoice is credited in full.

Before: `POST /bookings/{id}/host-cancel` of an unpaid invoice booking answered `refund_ore` = the total
(money never received "refunded"), and the host's cancel page promised the delegation the whole amount back.
"""
from datetime import UTC, date, datetime

from sqlalchemy import func, select

from app.extensions import db
from app.models import Booking, Payout, Refund
from app.services import booking as booking_service
from app.services import payouts
from app.services.base import Actor
from tests.helpers import YEAR, api_book, csrf_from, signed_in

DUE = datetime(YEAR, 6, 21, 13, 0, tzinfo=UTC)  # the stay's payout moment (24 hours after check-in)


def refunds_of(booking_id):
    return db.session.scalar(select(func.count(Refund.id)).where(Refund.booking_id == booking_id))


def test_api_host_cancel_of_an_unpaid_invoice_refunds_nothing_and_credits_all(api_world):
    booking_id = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:2]).get_json()["id"]
    response = api_world["host"].post(f"/bookings/{booking_id}/host-cancel", {"reason": "Vattenskada"})
    print("host-cancel answered", response.status_code, response.get_json())
    assert response.status_code == 200
    assert response.get_json()["refund_ore"] == 0  # no money was received
    assert refunds_of(booking_id) == 0  # no Refund row, so no Stripe call
    for api in (api_world["coord"], api_world["host"]):
        shown = api.get(f"/bookings/{booking_id}").get_json()
        assert shown["status"] == "cancelled_by_host"
        assert shown["invoice"]["credited_ore"] == shown["total_ore"] == 200000  # credited in full
    # The host earns nothing from a breach: no payout, whatever the credit.
    payouts.sync_payouts(now=DUE)
    assert db.session.scalar(select(Payout).where(Payout.booking_id == booking_id)) is None


def test_host_cancel_page_promises_the_credit_and_the_booking_page_shows_it(app, api_world):
    booking = booking_service.create_booking(
        Actor(api_world["coordinator"].id, "coordinator"), delegation_id=api_world["delegation"].id,
        bed_ids=api_world["bed_ids"][:1], check_in=date(YEAR, 6, 21), check_out=date(YEAR, 6, 23),
        accept_contract=True, payment_method="invoice")
    browser = signed_in(app, api_world["host_user"])
    page = browser.get(f"/host/bookings/{booking.id}/cancel")
    html = page.get_data(as_text=True)
    assert "Delegationen får hela beloppet tillbaka" not in html, "the cancel page promises a refund"
    assert "krediteras i sin helhet" in html and "1\u00a0000 kr" in html
    response = browser.post(f"/host/bookings/{booking.id}/cancel", data={
        "csrf_token": csrf_from(page), "reason": "Vattenskada", "understand": "y"})
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.expire_all()
    cancelled = db.session.get(Booking, booking.id)
    assert (cancelled.status, cancelled.refund_ore, cancelled.invoice_credited_ore) == (
        "cancelled_by_host", 0, 100000)
    assert refunds_of(booking.id) == 0
    flashed = browser.get("/host/bookings").get_data(as_text=True)
    assert "hela beloppet tillbaka" not in flashed and "krediteras i sin helhet" in flashed
    shown = browser.get(f"/host/bookings/{booking.id}").get_data(as_text=True)
    assert '<dd class="refund">0 kr</dd>' in shown
    assert '<dd class="credit">1\u00a0000 kr</dd>' in shown
