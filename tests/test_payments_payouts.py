"""The payout ledger: payable 24 hours after check-in, minus refunds; host cancellations never pay out."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Payout
from app.services import booking as booking_service
from app.services import cancellations, payouts
from app.services.base import Actor
from app.services.errors import DomainError, ValidationFailed
from tests.helpers import YEAR
from tests.stripe_fixtures import (
    CHECK_IN,
    CHECK_OUT,
    card_booking,
)

DUE = datetime(YEAR, 6, 21, 13, 0, tzinfo=UTC)  # 15:00 in Visby on the first night, plus 24 hours


@pytest.fixture
def world(make_listing, make_delegation, make_user):
    listing = make_listing(beds=4, price_ore=50000)
    coordinator = make_user("coordinator")
    return {"bed_ids": [b.id for b in listing.beds()], "coordinator": coordinator, "host_id": listing.host_id,
            "delegation": make_delegation(coordinator=coordinator)}


def _invoice_booking(world, beds, *, paid=True):
    """An invoice booking, its invoice paid in full unless `paid=False` (issue 16: a host earns invoice money only
    once it is received)."""
    from app.services import invoices
    booking = booking_service.create_booking(
        Actor(world["coordinator"].id, "coordinator"), delegation_id=world["delegation"].id, bed_ids=beds,
        check_in=CHECK_IN, check_out=CHECK_OUT, accept_contract=True, payment_method="invoice")
    if paid:
        invoices.record_payment(Actor.system(), booking.invoice_number, booking.total_ore, datetime.now(UTC).date(),
                                source="bgmax", bank_reference=f"test:{booking.id}")
    return booking


def test_an_unpaid_invoice_pays_the_host_nothing_until_its_money_is_received(world):
    from app.services import invoices
    booking = _invoice_booking(world, world["bed_ids"][:1], paid=False)
    assert payouts.sync_payouts(now=DUE) == 0
    invoices.record_payment(Actor.system(), booking.invoice_number, 30000, datetime.now(UTC).date(), source="bgmax",
                            bank_reference="test:part")
    assert payouts.sync_payouts(now=DUE) == 1
    assert db.session.scalar(select(Payout.amount_ore).where(Payout.booking_id == booking.id)) == 30000


def test_contract_amount_becomes_payable_24_hours_after_check_in_and_is_paid_once(world, admin_actor):
    booking = _invoice_booking(world, world["bed_ids"][:2])
    assert payouts.due_at_for(CHECK_IN) == DUE

    assert payouts.sync_payouts(now=DUE - timedelta(minutes=1)) == 0
    statement = payouts.host_statement(world["host_id"], now=DUE - timedelta(minutes=1))
    assert [(line.status, line.amount_ore) for line in statement.lines] == [("upcoming", booking.total_ore)]

    assert payouts.sync_payouts(now=DUE) == 1
    assert payouts.sync_payouts(now=DUE + timedelta(hours=1)) == 0  # idempotent
    due = payouts.due_payouts(now=DUE)
    assert [(p.booking_id, p.host_id, p.amount_ore) for p in due] == [(booking.id, world["host_id"],
                                                                        booking.total_ore)]

    with pytest.raises(ValidationFailed):
        payouts.mark_paid(admin_actor, due[0].id, "  ", now=DUE)
    with pytest.raises(DomainError):
        payouts.mark_paid(Actor(world["host_id"], "host"), due[0].id, "BG 123", now=DUE)
    paid = payouts.mark_paid(admin_actor, due[0].id, f"Bankgiro {YEAR}-06-22 #1", now=DUE)
    assert paid.status == "paid" and paid.transfer_reference == f"Bankgiro {YEAR}-06-22 #1"
    with pytest.raises(DomainError) as again:
        payouts.mark_paid(admin_actor, due[0].id, "twice", now=DUE)
    assert again.value.code == "payout_not_scheduled"
    statement = payouts.host_statement(world["host_id"], now=DUE)
    assert statement.paid_ore == booking.total_ore and statement.due_ore == 0


def test_host_cancellation_never_pays_out(world):
    kept = _invoice_booking(world, world["bed_ids"][:1])
    broken = _invoice_booking(world, world["bed_ids"][1:2])
    payouts.sync_payouts(now=DUE)
    assert {p.booking_id for p in db.session.scalars(select(Payout))} == {kept.id, broken.id}

    cancellations.cancel_by_host(Actor(world["host_id"], "host"), broken.id, "Dubbelbokat")
    payouts.sync_payouts(now=DUE)

    rows = {p.booking_id: (p.status, p.amount_ore) for p in db.session.scalars(select(Payout))}
    assert rows == {kept.id: ("scheduled", kept.total_ore), broken.id: ("void", 0)}
    lone = _invoice_booking(world, world["bed_ids"][2:3])
    cancellations.cancel_by_host(Actor(world["host_id"], "host"), lone.id, "Vattenskada")
    payouts.sync_payouts(now=DUE)
    assert db.session.scalar(select(Payout).where(Payout.booking_id == lone.id)) is None


def test_card_payout_is_the_contract_minus_refunds(world, api_as, stripe_app, no_stripe_webhooks):
    booking = card_booking(world["coordinator"], world["delegation"], world["bed_ids"][:2])
    assert api_as(world["coordinator"]).post(f"/bookings/{booking.id}/payment", json={
        "payment_method_id": "pm_card_visa"}).get_json()["status"] == "succeeded"
    cancellations.cancel_by_guest(Actor(world["coordinator"].id, "coordinator"), booking.id,
                                     now=datetime(YEAR, 6, 1, tzinfo=UTC))

    payouts.sync_payouts(now=DUE)

    payout = db.session.scalar(select(Payout).where(Payout.booking_id == booking.id))
    assert payout.amount_ore == booking.total_ore // 2  # the late-cancellation share the host keeps


def test_payout_pages(world, client, login, make_admin, make_user):
    _invoice_booking(world, world["bed_ids"][:1])
    payouts.sync_payouts(now=DUE)
    payout = db.session.scalar(select(Payout))
    payout.due_at = datetime.now(UTC) - timedelta(hours=1)  # make it due today for the page
    db.session.commit()
    secret = pyotp.random_base32()
    login(make_admin(totp_secret=secret), otp=pyotp.TOTP(secret).now())

    page = client.get("/admin/payments/payouts")
    assert page.status_code == 200 and f"ref-{payout.id}" in page.get_data(as_text=True)
    from tests.helpers import csrf_from
    done = client.post(f"/admin/payments/payouts/{payout.id}/paid",
                       data={"reference": "BG 42", "csrf_token": csrf_from(page)})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Payout, payout.id).status == "paid"
    assert client.get("/admin/payments").status_code == 200

    client.post("/logout", data={"csrf_token": csrf_from(client.get("/admin/payments"))})
    from app.models import User
    login(db.session.get(User, world["host_id"]))
    statement = client.get("/host/payouts")
    assert statement.status_code == 200 and "BG 42" in statement.get_data(as_text=True)
