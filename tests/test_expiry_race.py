"""The expiry job racing a payment, made deterministic with SQLAlchemy events in the test process.

One side is paused between its read and its write (an `after_cursor_execute` listener on the
engine waits on a threading.Event in that side's thread only); the other side runs in another
thread with its own app context; the paused side is let go once the other has finished or is
waiting on a lock. No switch in the app. Whatever the order, the booking ends `confirmed` with
its bed-nights `booked`, or `expired` with the money refunded; never `expired` with beds
`booked` and the money kept. Runs on SQLite and PostgreSQL (PostgreSQL is the one that matters:
SQLite's BEGIN IMMEDIATE serialises the two sides anyway).
"""
from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
import stripe
from sqlalchemy import select

from app.extensions import db
from app.models import BedNight, Booking, Payment, Refund
from app.services import payments, settlement, stripe_gateway
from app.services.base import Actor
from app.services.jobs import expire_holds
from tests.pause import Pause, run_side, waiting_on_lock
from tests.stripe_fixtures import (
    card_booking,
)

ROUNDS = 3  # per order and database: each round is a full, deterministic interleaving


@pytest.fixture
def world(make_listing, make_delegation, make_user):
    listing = make_listing(beds=4, price_ore=50000)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator=coordinator)
    # Ids only: each round ends the main thread's session, so no ORM object may outlive it.
    return {"bed_ids": [b.id for b in listing.beds()], "coordinator": SimpleNamespace(id=coordinator.id),
            "delegation": SimpleNamespace(id=delegation.id)}


def _stale_holds_select(sql: str) -> bool:
    return sql.startswith("SELECT") and "FROM bookings" in sql and "bookings.expires_at <=" in sql


def _payment_locks_booking(sql: str) -> bool:
    # `_locked_booking`: FOR UPDATE on PostgreSQL; SQLite renders none (its BEGIN IMMEDIATE already holds the lock).
    return sql.startswith("SELECT") and "FROM bookings WHERE bookings.id =" in sql


def _run(app, name, errors, fn):
    return run_side(app, name, {}, errors, fn)


def _race(app, world, paused_side: str, round_no: int):
    """One round: a succeeded PaymentIntent applied while the expiry job runs; returns the booking id."""
    booking = card_booking(world["coordinator"], world["delegation"], [world["bed_ids"][round_no]])
    booking_id, later = booking.id, booking.expires_at + timedelta(minutes=1)
    actor = Actor(world["coordinator"].id, "coordinator")
    payment_id, attempt_key, amount = payments._begin_attempt(actor, booking_id, "pm_card_visa", booking.created_at)
    # The money is taken at Stripe; what the webhook would apply is fetched back from localstripe.
    created = stripe_gateway.create_intent(booking_id, payment_id, attempt_key, amount, "pm_card_visa")
    intent = stripe_gateway.fetch_intent(created.id)
    assert intent.status == "succeeded"
    db.session.remove()  # the main thread holds nothing while the two sides run

    url, backend = app.config["SQLALCHEMY_DATABASE_URI"], db.engine.dialect.name
    first, second = ("expiry", "payment") if paused_side == "expiry" else ("payment", "expiry")
    pause = Pause(db.engine, _stale_holds_select if paused_side == "expiry" else _payment_locks_booking)
    pause.thread_name = first
    errors: list = []
    sides = {"expiry": lambda: expire_holds(now=later), "payment": lambda: settlement.apply_intent(intent, now=later)}
    try:
        threads = [_run(app, first, errors, sides[first])]
        assert pause.reached.wait(30), f"the {first} side never reached its read {errors}"
        threads.append(_run(app, second, errors, sides[second]))
        # Let the paused side go once the other has finished, or waits on a lock the paused side holds.
        deadline = time.monotonic() + 30
        while threads[1].is_alive() and not waiting_on_lock(url, backend):
            assert time.monotonic() < deadline, f"the {second} side neither finished nor waited on a lock"
            time.sleep(0.05 if backend == "postgresql" else 0.3)
            if backend == "sqlite":
                break  # SQLite: the second side waits at BEGIN IMMEDIATE for the first one's write lock
        how = f"{second} finished" if not threads[1].is_alive() else f"{second} waiting on {first}"
        pause.release.set()
        for thread in threads:
            thread.join(60)
            assert not thread.is_alive(), f"{thread.name} side hung"
    finally:
        pause.remove()
    assert not errors, errors
    return booking_id, intent.id, amount, f"{backend}, {first} paused after its read, released with {how}"


def _assert_outcome(booking_id, intent_id, received, how):
    db.session.rollback()
    booking = db.session.get(Booking, booking_id)
    states = set(db.session.scalars(select(BedNight.state).where(BedNight.booking_id == booking_id)))
    payment = db.session.scalar(select(Payment).where(Payment.stripe_payment_intent_id == intent_id))
    refunded_at_stripe = sum(r.amount for r in stripe.Refund.list(payment_intent=intent_id).data)
    refunds = db.session.scalars(select(Refund).where(Refund.booking_id == booking_id)).all()
    kept = received - refunded_at_stripe
    outcome = f"{how}: booking {booking.status}, bed-nights {sorted(states)}, received {received}, kept {kept}, " \
              f"refunded {refunded_at_stripe}, refund rows {[(r.amount_ore, r.status) for r in refunds]}"
    print(outcome)
    assert payment.status == "succeeded", outcome
    assert not (booking.status == "expired" and "booked" in states and kept), "expired, beds booked, money kept: " \
        + outcome
    if booking.status == "confirmed":
        assert states == {"booked"} and kept == received and refunded_at_stripe == 0, outcome
    else:
        assert booking.status == "expired" and "booked" not in states, outcome
        assert refunded_at_stripe == received and kept == 0, outcome
    assert received == kept + refunded_at_stripe


@pytest.mark.parametrize("paused_side", ["expiry", "payment"])
def test_expiry_job_racing_a_payment_never_expires_a_paid_booking(stripe_app, no_stripe_webhooks, world, paused_side):
    for round_no in range(ROUNDS):
        _assert_outcome(*_race(stripe_app, world, paused_side, round_no))
