"""Issue 15: two workers run the draw at allocation_at at the same moment (threads released together by a barrier,
each with its own app context and database session, on SQLite and PostgreSQL). Exactly once: every request is
decided once (one order or one waiting-list entry, one decision in the audit log, one mail), nothing is
double-booked, and the rank order holds, whichever worker decided which request.

With the advisory lock (PostgreSQL) one worker drives and the other finds it busy or done; with the advisory lock
taken away, both drive at once and only the round's row lock and the per-request decisions keep it exactly once.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    AllocationRequest,
    AuditEntry,
    Bed,
    BedNight,
    BedPrice,
    Booking,
    Listing,
    Order,
    OutboxEmail,
    Room,
    WaitlistEntry,
)
from app.services import allocation
from app.services.base import Actor
from tests.draw_model import Decision, ModelBed, Want, check_draw
from tests.helpers import NOW, YEAR
from tests.pause import run_side

REQUESTS = 12
AT = NOW + timedelta(hours=1)


@pytest.fixture
def contested(make_season, make_listing, make_user, make_delegation):
    """Twelve requests of 1-3 beds for 13 beds in four listings: some get beds, some wait."""
    season = make_season(requests_open_at=NOW - timedelta(hours=1), allocation_at=AT,
                         bookings_open_at=AT + timedelta(hours=1))
    for beds, price in ((4, 50000), (4, 45000), (3, 40000), (2, 35000)):
        make_listing(beds=beds, price_ore=price, season=season)
    for n in range(REQUESTS):
        coordinator = make_user("coordinator")
        delegation = make_delegation(coordinator, members=0)
        allocation.submit_request(Actor(coordinator.id, "coordinator"), YEAR, delegation_id=delegation.id,
                                  check_in=date(YEAR, 6, 21), check_out=date(YEAR, 6, 23), beds=1 + n % 3,
                                  payment_method="card" if n % 2 else "invoice", accept_contract=True, now=NOW)
    season_id = season.id
    db.session.remove()  # the main thread holds nothing while the workers run
    return season_id


def _race(app) -> list[list[allocation.DrawReport]]:
    barrier = threading.Barrier(2)
    results: dict = {}
    errors: list = []

    def worker():
        barrier.wait(timeout=30)
        return allocation.draw_due(AT + timedelta(seconds=1))

    threads = [run_side(app, name, results, errors, worker) for name in ("worker-1", "worker-2")]
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive(), f"{thread.name} hung"
    assert not errors, errors
    return [results["worker-1"], results["worker-2"]]


def _assert_exactly_once(season_id: int, reports: list[list[allocation.DrawReport]]) -> None:
    db.session.rollback()
    rows = db.session.scalars(select(AllocationRequest).where(AllocationRequest.season_id == season_id)).all()
    assert sorted(row.rank for row in rows) == list(range(1, REQUESTS + 1))
    assert all(row.status in ("allocated", "unallocated") for row in rows)
    allocated = [row for row in rows if row.status == "allocated"]
    decided_by_runs = sum(r.allocated + r.unallocated for worker in reports for r in worker)
    assert decided_by_runs == REQUESTS, [r.lines() for worker in reports for r in worker]
    assert db.session.scalar(select(func.count(Order.id))) == len(allocated)
    assert {row.order_id for row in allocated} == set(db.session.scalars(select(Order.id)))
    assert db.session.scalar(select(func.count(WaitlistEntry.id))) == REQUESTS - len(allocated)
    for row in rows:
        decisions = db.session.scalar(select(func.count(AuditEntry.id)).where(
            AuditEntry.object_type == "allocation_request", AuditEntry.object_id == str(row.id),
            AuditEntry.action.in_(("allocation.allocated", "allocation.unallocated"))))
        assert decisions == 1, f"request {row.id} decided {decisions} times"
        assert db.session.scalar(select(func.count(OutboxEmail.id)).where(OutboxEmail.body_text.contains(
            row.ref))) == 1
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "allocation.drawn")) == 1
    occupied = db.session.execute(select(BedNight.bed_id, BedNight.night).where(
        BedNight.state.in_(("held", "booked")))).all()
    assert len(occupied) == len(set(occupied))
    # The rank order held whoever decided: replay against the model.
    beds: dict[int, ModelBed] = {}
    for bed_id, listing_id, price, walking in db.session.execute(
            select(Bed.id, Room.listing_id, BedPrice.price_ore, Listing.walking_minutes)
            .join(Room, Room.id == Bed.room_id).join(Listing, Listing.id == Room.listing_id)
            .join(BedPrice, BedPrice.bed_id == Bed.id).where(BedPrice.season_id == season_id)):
        beds[bed_id] = ModelBed(bed_id, listing_id, price, walking)
    decisions_ = []
    for row in rows:
        nights = frozenset(range(row.check_in.toordinal(), row.check_out.toordinal()))
        bed_ids = sorted({line.bed_id for booking in db.session.scalars(
            select(Booking).where(Booking.order_id == row.order_id)) for line in booking.lines}) if row.order_id else []
        decisions_.append(Decision(Want(row.rank, row.beds, nights, row.max_listings), row.status == "allocated",
                                   bed_ids))
    check_draw(beds, {}, decisions_)


def test_two_workers_at_allocation_at_draw_exactly_once(app, contested):
    reports = _race(app)
    _assert_exactly_once(contested, reports)
    # One of them completed it; the other found it busy (the advisory lock), done, or being drawn, and left it.
    assert sum(r.drawn and not r.already for worker in reports for r in worker) == 1
    print("worker reports:", [[r.lines() for r in worker] for worker in reports])


def test_two_workers_without_the_advisory_lock_still_draw_exactly_once(app, contested, monkeypatch):
    @contextmanager
    def always(_season_id):
        yield True

    monkeypatch.setattr(allocation, "_driving", always)  # both drive: only the row lock and the decisions guard
    reports = _race(app)
    _assert_exactly_once(contested, reports)
    print("decided by each worker:", [sum(r.allocated + r.unallocated for r in worker) for worker in reports])
