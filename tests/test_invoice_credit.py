"""Issue 9: a guest cancellation of an unpaid invoice refunds nothing; the invoice is credited by the terms' share."""
from datetime import UTC, date, datetime

from sqlalchemy import func, select

from app.extensions import db
from app.models import Booking, Refund
from app.services import booking as booking_service
from app.services import cancellations
from app.services.base import Actor
from tests.helpers import YEAR, api_book, csrf_from, signed_in


def refunds_of(booking_id):
    return db.session.scalar(select(func.count(Refund.id)).where(Refund.booking_id == booking_id))


def test_api_cancel_of_unpaid_invoice_refunds_nothing_and_credits_all(api_world):
    booking_id = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:2]).get_json()["id"]
    response = api_world["coord"].post(f"/bookings/{booking_id}/cancel")
    print("cancel answered", response.status_code, response.get_json())
    assert response.status_code == 200
    assert response.get_json()["refund_ore"] == 0  # no money was received
    assert refunds_of(booking_id) == 0
    invoice = api_world["coord"].get(f"/bookings/{booking_id}").get_json()["invoice"]
    assert invoice["credited_ore"] == 200000  # before the free-cancellation date: all of it


def test_late_cancel_credits_the_terms_share_and_the_rest_stays_due(api_world):
    from app.services.ledger import host_share_ore
    actor = Actor(api_world["coordinator"].id, "coordinator")
    booking = booking_service.create_booking(
        actor, delegation_id=api_world["delegation"].id, bed_ids=api_world["bed_ids"][:2], check_in=date(YEAR, 6, 21),
        check_out=date(YEAR, 6, 23), accept_contract=True, payment_method="invoice")
    late = datetime(YEAR, 4, 22, 10, tzinfo=UTC)  # the day after the free-cancellation date
    cancelled = cancellations.cancel_by_guest(actor, booking.id, now=late)
    print("late cancel: refund_ore", cancelled.refund_ore, "credited",
          getattr(cancelled, "invoice_credited_ore", "(no such column)"))
    assert cancelled.refund_ore == 0
    assert cancelled.invoice_credited_ore == 100000  # the late 50 %
    assert refunds_of(booking.id) == 0
    assert host_share_ore(cancelled) == 0  # issue 16: invoice money counts for the host once it is received
    from app.services import invoices
    invoices.record_payment(Actor.system(), cancelled.invoice_number, 100000, late.date(), source="bgmax",
                            bank_reference="test:late", now=late)
    assert host_share_ore(cancelled) == 100000  # the rest stays due, and once paid it is the host's


def test_pages_show_the_credit_not_a_refund(app, api_world):
    booking = booking_service.create_booking(
        Actor(api_world["coordinator"].id, "coordinator"), delegation_id=api_world["delegation"].id,
        bed_ids=api_world["bed_ids"][:1], check_in=date(YEAR, 6, 21), check_out=date(YEAR, 6, 23),
        accept_contract=True, payment_method="invoice")
    browser = signed_in(app, api_world["coordinator"])
    page = browser.get(f"/coordinator/bookings/{booking.id}/cancel")
    html = page.get_data(as_text=True)
    assert '<dd class="refund"><strong>0 kr</strong></dd>' in html, "the cancel page promises a refund"
    assert '<dd class="credit"><strong>1\u00a0000 kr</strong></dd>' in html
    response = browser.post(f"/coordinator/bookings/{booking.id}/cancel", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302
    db.session.expire_all()
    cancelled = db.session.get(Booking, booking.id)
    assert cancelled.status == "cancelled_by_guest" and cancelled.refund_ore == 0
    assert refunds_of(booking.id) == 0
    shown = browser.get(f"/coordinator/bookings/{booking.id}").get_data(as_text=True)
    assert '<dd class="credit">1\u00a0000 kr</dd>' in shown
