"""Issue 9, integrity rules: nights already over are refused through every door (service, API)."""
from datetime import UTC, date, datetime

import pytest

from app.extensions import db
from app.models import HostProfile, User
from app.services import booking as booking_service
from app.services import inventory, waitlist
from app.services.base import Actor
from app.services.errors import DomainError
from tests.helpers import YEAR

# 23 June 2027, 08:00 in Stockholm: the nights of 20-22 June are over, the 23rd is today.
LATE = datetime(YEAR, 6, 23, 6, 0, tzinfo=UTC)


@pytest.fixture
def world(make_listing, make_delegation, make_user):
    listing = make_listing(beds=2, price_ore=50000)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    host_user = db.session.get(HostProfile, listing.host_id).user
    return {"bed_ids": [b.id for b in listing.beds()], "delegation": delegation,
            "coordinator": Actor.of(coordinator), "host": Actor.of(host_user)}


@pytest.mark.parametrize("method", ["invoice", "card"])
def test_booking_a_night_already_over_is_refused(world, method):
    with pytest.raises(DomainError) as refused:
        booking_service.create_booking(
            world["coordinator"], delegation_id=world["delegation"].id, bed_ids=world["bed_ids"][:1],
            check_in=date(YEAR, 6, 22), check_out=date(YEAR, 6, 24), accept_contract=True,
            payment_method=method, now=LATE)
    assert refused.value.code == "night_in_past"
    # Tonight is not over: a stay from today is still sold.
    booking = booking_service.create_booking(
        world["coordinator"], delegation_id=world["delegation"].id, bed_ids=world["bed_ids"][:1],
        check_in=date(YEAR, 6, 23), check_out=date(YEAR, 6, 24), accept_contract=True,
        payment_method=method, now=LATE)
    assert booking.id


def test_host_block_of_a_night_already_over_is_refused(world):
    with pytest.raises(DomainError) as refused:
        inventory.block_nights(world["host"], world["bed_ids"][0], date(YEAR, 6, 21), date(YEAR, 6, 24),
                                     now=LATE)
    assert refused.value.code == "night_in_past"
    assert inventory.block_nights(world["host"], world["bed_ids"][0], date(YEAR, 6, 23),
                                        date(YEAR, 6, 24), now=LATE)


def test_waiting_list_for_a_night_already_over_is_refused(world):
    with pytest.raises(DomainError) as refused:
        waitlist.join(world["coordinator"], delegation_id=world["delegation"].id, year=YEAR,
                      check_in=date(YEAR, 6, 21), check_out=date(YEAR, 6, 24), beds=1, now=LATE)
    assert refused.value.code == "night_in_past"


def test_api_refuses_a_booking_for_a_night_already_over(world, api_as, monkeypatch):
    coord = api_as(db.session.get(User, world["coordinator"].user_id))
    monkeypatch.setattr("app.services.base.utcnow", lambda: LATE)
    response = coord.post("/bookings", {
        "delegation_id": world["delegation"].id, "bed_ids": world["bed_ids"][:1], "check_in": f"{YEAR}-06-21",
        "check_out": f"{YEAR}-06-24", "accept_contract": True, "payment_method": "invoice"})
    assert response.status_code == 422 and response.get_json()["code"] == "night_in_past", response.get_json()


def test_price_for_a_finished_season_is_refused(world):
    from app.services import pricing
    after = datetime(YEAR, 6, 26, 10, 0, tzinfo=UTC)  # the last night, 25 June, has passed
    with pytest.raises(DomainError) as refused:
        pricing.set_price(world["host"], world["bed_ids"][0], YEAR, 40000, now=after)
    assert refused.value.code == "season_over"
