"""Property tests: the price rules for any numbers, and the inventory under any sequence of actions."""
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from app.extensions import db
from app.models import OCCUPYING_STATES, BedNight, Booking
from app.services import booking as booking_service
from app.services import cancellations, jobs, listings, pricing
from app.services.base import Actor
from app.services.errors import DomainError
from tests.helpers import NOW, YEAR

FIXTURE_SETTINGS = settings(max_examples=30, deadline=None,
                            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def priced_world(make_season, make_host):
    previous = make_season(year=YEAR - 1, bookings_open_at=NOW - timedelta(days=300))
    closed = make_season(year=YEAR, bookings_open_at=NOW + timedelta(days=30), price_cap_ore=90000,
                         max_increase_pct=10)
    host = make_host()
    actor = Actor(host.id, "host")
    addresses = iter(range(1, 1_000_000))

    def new_bed():
        # A property of its own each time: the year-over-year reference follows the property (its listing and
        # the host's listings at its address), so a bed beside an earlier example's would inherit its price.
        listing = listings.create_listing(actor, title="T", description="", address=f"Gatan {next(addresses)}",
                                          postal_code="621 56", walking_minutes=3)
        room = listings.add_room(actor, listing.id, "R")
        return listings.add_bed(actor, room.id, "B", "single").id

    return actor, new_bed, previous, closed


@FIXTURE_SETTINGS
@given(previous_ore=st.integers(1, 120000), requested_ore=st.integers(1, 200000))
def test_price_rule_is_exactly_min_of_cap_and_yearly_limit(priced_world, previous_ore, requested_ore):
    actor, new_bed, previous, season = priced_world
    bed_id = new_bed()
    if previous_ore <= previous.price_cap_ore:
        # Priced while last year's season was still ahead (before it opened): its prices are now final.
        pricing.set_price(actor, bed_id, YEAR - 1, previous_ore, now=previous.bookings_open_at - timedelta(days=1))
        ceiling = min(season.price_cap_ore, previous_ore * (100 + season.max_increase_pct) // 100)
    else:
        ceiling = season.price_cap_ore
    try:
        pricing.set_price(actor, bed_id, YEAR, requested_ore)
        accepted = True
    except DomainError as error:
        accepted = False
        assert error.facts["max_allowed_ore"] == ceiling
        pricing.set_price(actor, bed_id, YEAR, error.facts["max_allowed_ore"])  # the advice always works
    assert accepted == (requested_ore <= ceiling)


@FIXTURE_SETTINGS
@given(first_ore=st.integers(1, 90000), second_ore=st.integers(1, 90000))
def test_after_opening_prices_only_go_down(make_season, make_host, first_ore, second_ore):
    from app.models import Season
    season = db.session.scalar(select(Season).where(Season.year == YEAR)) or make_season()
    host = make_host()
    actor = Actor(host.id, "host")
    listing = listings.create_listing(actor, title="T", description="", address="A", postal_code="621 56",
                                      walking_minutes=3)
    bed_id = listings.add_bed(actor, listings.add_room(actor, listing.id, "R").id, "B", "single").id
    pricing.set_price(actor, bed_id, season.year, first_ore)
    listings.publish(actor, listing.id, season.terms_version)  # on offer since opening: frozen from here
    try:
        pricing.set_price(actor, bed_id, season.year, second_ore)
        accepted = True
    except DomainError as error:
        accepted = False
        assert error.code == "price_frozen" and error.facts["max_allowed_ore"] == first_ore
    assert accepted == (second_ore <= first_ore)
    assert pricing.price_for(bed_id, season.id) == (second_ore if accepted else first_ore)


STAY_DAYS = [date(YEAR, 6, 20) + timedelta(days=i) for i in range(7)]


def _inventory_invariants() -> None:
    doubled = db.session.execute(
        select(BedNight.bed_id, BedNight.night, func.count()).where(BedNight.state.in_(OCCUPYING_STATES))
        .group_by(BedNight.bed_id, BedNight.night).having(func.count() > 1)).all()
    assert doubled == []
    for booking in db.session.scalars(select(Booking)):
        states = {line.state for line in booking.lines}
        assert booking.total_ore == sum(line.price_ore for line in booking.lines)
        expected = {"confirmed": {"booked"}, "awaiting_payment": {"held"}, "cancelled_by_guest": {"released"},
                    "cancelled_by_host": {"host_cancelled"}, "expired": {"released"}}[booking.status]
        assert states == expected, (booking.id, booking.status, states)


def test_inventory_invariants_hold_for_any_sequence(make_season, make_listing, make_user, make_delegation):
    # Host cancellations in this test must not suspend the host, nor the hoarding limits refuse a card hold:
    # the machine is about the inventory (test_hoarding.py is about the limits).
    make_season(strike_limit=100, max_open_holds=1000)
    listing = make_listing(beds=3)
    host = Actor(listing.host_id, "host")
    bed_ids = [b.id for b in listing.beds()]
    coordinators = []
    for _ in range(2):
        user = make_user("coordinator")
        coordinators.append((Actor(user.id, "coordinator"), make_delegation(user).id))

    class Inventory(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.bookings: list[int] = []

        @rule(who=st.sampled_from([0, 1]), beds=st.sets(st.sampled_from(bed_ids), min_size=1),
              start=st.integers(0, 5), length=st.integers(1, 3), card=st.booleans())
        def book(self, who, beds, start, length, card):
            actor, delegation_id = coordinators[who]
            check_in = STAY_DAYS[start]
            check_out = STAY_DAYS[min(start + length, 6)]
            try:
                booking = booking_service.create_booking(
                    actor, delegation_id=delegation_id, bed_ids=sorted(beds), check_in=check_in,
                    check_out=check_out, accept_contract=True, payment_method="card" if card else "invoice")
                self.bookings.append(booking.id)
            except DomainError as error:
                assert error.code == "bed_nights_taken"

        @rule(data=st.data())
        def guest_cancel(self, data):
            if not self.bookings:
                return
            booking = db.session.get(Booking, data.draw(st.sampled_from(self.bookings)))
            actor = next(a for a, d in coordinators if d == booking.delegation_id)
            try:
                cancellations.cancel_by_guest(actor, booking.id)
            except DomainError as error:
                assert error.code == "not_cancellable"

        @rule(data=st.data())
        def host_cancel(self, data):
            if not self.bookings:
                return
            booking_id = data.draw(st.sampled_from(self.bookings))
            try:
                cancellations.cancel_by_host(host, booking_id, "breach")
            except DomainError as error:
                assert error.code == "not_cancellable"

        @rule()
        def time_passes(self):
            jobs.expire_holds(now=NOW + timedelta(hours=1))

        @invariant()
        def inventory_is_consistent(self):
            db.session.expire_all()
            _inventory_invariants()

    run_state_machine_as_test(Inventory, settings=settings(max_examples=25, stateful_step_count=15, deadline=None,
                                                           suppress_health_check=list(HealthCheck)))
