"""Issue 9, caps at sale time: a booking copies the price in force when it commits, never a price above the
season's cap in force then; the listing it books is re-checked (published, its place) under the same lock.

Deterministic interleavings, on SQLite and PostgreSQL, with the pattern of tests/test_expiry_race.py: the
booking is paused in the test process after one of its statements (an `after_cursor_execute` listener that
waits in the booking's thread only), the rival change runs in another thread, and the booking is let go
either once the rival has committed, or once the rival waits on a lock the booking holds. No switch in the app.

- paused after its first read (before its write transaction): the rival commits first, so the booking must
  copy the rival's values (the lowered price, the lowered cap, the new address) or refuse (unpublished);
- paused after it inserted the booking row (inside its write transaction): the rival must wait for it
  (PostgreSQL: a row lock; SQLite: BEGIN IMMEDIATE), so the booking keeps the old price, and an address
  change then sees the live booking and is refused.
"""
from __future__ import annotations

import json
import time
from datetime import date

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import BedNight, BedPrice, Booking, Contract, Listing, PriceChange
from app.services import booking as booking_service
from app.services import listings, pricing, seasons
from app.services.base import Actor
from app.services.errors import DomainError
from tests.helpers import YEAR
from tests.pause import Pause, run_side
from tests.pause import waiting_on_lock as _waiting_on_lock


def _run(app, name, errors, fn):
    return run_side(app, name, {}, errors, fn)

OLD, LOWER, CAP = 80000, 50000, 60000
CHECK_IN, CHECK_OUT = date(YEAR, 6, 21), date(YEAR, 6, 23)


@pytest.fixture
def world(make_listing, make_delegation, make_user, admin_actor):
    listing = make_listing(beds=2, price_ore=OLD)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator=coordinator)
    ids = {"listing_id": listing.id, "host_id": listing.host_id, "bed_ids": [b.id for b in listing.beds()],
           "coordinator_id": coordinator.id, "delegation_id": delegation.id, "admin_id": admin_actor.user_id}
    db.session.remove()  # ids only: the two threads have their own sessions
    return ids


def _first_read(sql: str) -> bool:
    """The booking's fast-path read of its beds, listing and prices (before its write transaction)."""
    return sql.startswith("SELECT") and "FROM beds JOIN rooms" in sql and "LEFT OUTER JOIN bed_prices" in sql


def _booking_inserted(sql: str) -> bool:
    return sql.startswith("INSERT INTO bookings")


def _book(world):
    return lambda: booking_service.create_booking(
        Actor(world["coordinator_id"], "coordinator"), delegation_id=world["delegation_id"],
        bed_ids=world["bed_ids"], check_in=CHECK_IN, check_out=CHECK_OUT, accept_contract=True,
        payment_method="invoice")


def interleave(app, world, matches, rival, *, rival_first: bool) -> tuple[bool, dict]:
    """Pause the booking after `matches`, run `rival`; rival_first: let the booking go once the rival has
    committed; else once it waits on the booking's lock (or has finished, which is then the defect).
    Returns (the rival had finished when the booking went on, {side: exception})."""
    url, backend = app.config["SQLALCHEMY_DATABASE_URI"], db.engine.dialect.name
    db.session.remove()
    pause = Pause(db.engine, matches)
    pause.thread_name = "booking"
    errors: list = []
    results: dict = {}

    def keep(name, fn):
        def run():
            results[name] = fn()
        return run

    try:
        booking_thread = _run(app, "booking", errors, keep("booking", _book(world)))
        assert pause.reached.wait(30), f"the booking never reached its statement {errors}"
        rival_thread = _run(app, "rival", errors, keep("rival", rival))
        if rival_first:
            rival_thread.join(30)
            assert not rival_thread.is_alive(), "the rival waited on a booking that holds no lock yet"
        else:
            deadline = time.monotonic() + 30
            while rival_thread.is_alive() and not _waiting_on_lock(url, backend):
                assert time.monotonic() < deadline, "the rival neither finished nor waited on a lock"
                time.sleep(0.05)
                if backend == "sqlite" and time.monotonic() > deadline - 29:
                    break  # SQLite: the rival waits at BEGIN IMMEDIATE for the booking's write lock
        rival_finished = not rival_thread.is_alive()
        pause.release.set()
        for thread in (booking_thread, rival_thread):
            thread.join(60)
            assert not thread.is_alive(), f"{thread.name} hung"
    finally:
        pause.remove()
    return rival_finished, {name: exc for name, exc in errors}


@pytest.fixture
def run(app, world):
    return lambda matches, rival, rival_first: interleave(app, world, matches, rival, rival_first=rival_first)


def _sold(booking_id: int) -> tuple[set[int], int, set[int], int]:
    """(line prices, total, contract line prices, contract total) of a booking, read fresh."""
    db.session.rollback()
    booking = db.session.get(Booking, booking_id)
    lines = set(db.session.scalars(select(BedNight.price_ore).where(BedNight.booking_id == booking_id)))
    snapshot = json.loads(db.session.scalar(select(Contract.snapshot).where(Contract.booking_id == booking_id)))
    return lines, booking.total_ore, {line["price_ore"] for line in snapshot["lines"]}, snapshot["total_ore"]


def _lower_price(world):
    host = Actor(world["host_id"], "host")
    return lambda: [pricing.set_price(host, bed_id, YEAR, LOWER) for bed_id in world["bed_ids"]]


def _lower_cap(world):
    return lambda: seasons.update_season(Actor(world["admin_id"], "admin"), YEAR, {"price_cap_ore": CAP})


def test_a_price_lowered_before_the_booking_commits_is_the_price_it_copies(run, world):
    rival_finished, errors = run(_first_read, _lower_price(world), True)
    assert rival_finished and not errors, errors
    booking = db.session.scalar(select(Booking).order_by(Booking.id.desc()))
    nights = 2 * len(world["bed_ids"])
    assert _sold(booking.id) == ({LOWER}, LOWER * nights, {LOWER}, LOWER * nights)


def test_a_price_lowering_waits_for_a_booking_in_progress(run, world, backend):
    rival_finished, errors = run(_booking_inserted, _lower_price(world), False)
    assert not errors, errors
    booking = db.session.scalar(select(Booking).order_by(Booking.id.desc()))
    lines, total, contract_lines, contract_total = _sold(booking.id)
    # The old price only for a booking that committed before the lowering did.
    assert not (rival_finished and lines == {OLD}), \
        f"{backend}: the lowering committed while the booking was open, yet the booking copied {lines}"
    assert lines == contract_lines == {OLD} and total == contract_total
    assert set(db.session.scalars(select(BedPrice.price_ore).where(BedPrice.bed_id.in_(world["bed_ids"])))) == {LOWER}


def test_a_cap_lowered_before_the_booking_commits_is_never_exceeded(run, world):
    rival_finished, errors = run(_first_read, _lower_cap(world), True)
    assert rival_finished and not errors, errors
    booking = db.session.scalar(select(Booking).order_by(Booking.id.desc()))
    nights = 2 * len(world["bed_ids"])
    assert _sold(booking.id) == ({CAP}, CAP * nights, {CAP}, CAP * nights)


def test_a_cap_lowering_waits_for_a_booking_in_progress(run, world, backend):
    rival_finished, errors = run(_booking_inserted, _lower_cap(world), False)
    assert not errors, errors
    booking = db.session.scalar(select(Booking).order_by(Booking.id.desc()))
    lines, *_ = _sold(booking.id)
    assert not (rival_finished and lines != {CAP}), \
        f"{backend}: the cap of {CAP} committed while the booking was open, yet the booking sold at {lines}"
    assert set(db.session.scalars(select(BedPrice.price_ore).where(BedPrice.bed_id.in_(world["bed_ids"])))) == {CAP}


def _move(world):
    host = Actor(world["host_id"], "host")
    return lambda: listings.update_listing(host, world["listing_id"], title="Rum i Visby", description="Nära.",
                                           address="Hamngatan 3", postal_code="621 57", walking_minutes=12)


def test_a_listing_moved_before_the_booking_commits_is_the_place_its_contract_names(run, world):
    rival_finished, errors = run(_first_read, _move(world), True)
    assert rival_finished and not errors, errors
    db.session.rollback()
    booking = db.session.scalar(select(Booking).order_by(Booking.id.desc()))
    place = json.loads(db.session.scalar(select(Contract.snapshot).where(Contract.booking_id == booking.id)))
    assert place["property"]["address"] == "Hamngatan 3", place["property"]
    assert place["property"]["walking_minutes"] == 12


def test_a_listing_cannot_move_under_a_booking_in_progress(run, world, backend):
    rival_finished, errors = run(_booking_inserted, _move(world), False)
    assert "booking" not in errors, errors
    db.session.rollback()
    address = db.session.get(Listing, world["listing_id"]).address
    refused = errors.get("rival")
    assert address == "Strandgatan 1" and isinstance(refused, DomainError) and \
        refused.code == "listing_has_bookings", \
        f"{backend}: the address became {address!r} under a live booking (rival finished: {rival_finished})"


def test_a_listing_unpublished_before_the_booking_commits_is_not_booked(run, world):
    host = Actor(world["host_id"], "host")
    rival_finished, errors = run(_first_read, lambda: listings.unpublish(host, world["listing_id"]), True)
    assert rival_finished and "rival" not in errors, errors
    refused = errors.get("booking")
    assert isinstance(refused, DomainError) and refused.code == "not_bookable", errors
    db.session.rollback()
    assert db.session.scalar(select(Booking.id)) is None


def test_the_cap_lowering_is_logged_by_the_system(run, world):
    """The price changes a cap lowering makes are in the price log with no actor (the system)."""
    run(_first_read, _lower_cap(world), True)
    db.session.rollback()
    logged = db.session.scalars(select(PriceChange).where(PriceChange.requested_price_ore == CAP)).all()
    assert sorted(c.bed_id for c in logged) == sorted(world["bed_ids"])
    assert all(c.actor_id is None and c.accepted and c.old_price_ore == OLD for c in logged)
