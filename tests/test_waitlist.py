"""The waiting list: freed beds are offered to the first matching entry, reserved for 48 hours, then the next."""
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import BedNight, Booking, Contract, OutboxEmail, WaitlistEntry
from app.services import booking as booking_service
from app.services import cancellations, jobs, waitlist
from app.services.base import Actor
from app.services.errors import Conflict
from tests.helpers import NOW, YEAR, csrf_from

STAY = {"year": YEAR, "check_in": f"{YEAR}-06-21", "check_out": f"{YEAR}-06-23"}
T0 = NOW + timedelta(hours=1)


@pytest.fixture
def full(make_listing, make_user, make_delegation, api_as):
    """A 2-bed listing booked out by one delegation, and two more coordinators who want beds."""
    listing = make_listing(beds=2, price_ore=50000)
    owner = make_user("coordinator")
    owner_delegation = make_delegation(owner)
    booked = booking_service.create_booking(
        Actor(owner.id, "coordinator"), delegation_id=owner_delegation.id, bed_ids=[b.id for b in listing.beds()],
        check_in=date(YEAR, 6, 21), check_out=date(YEAR, 6, 23), accept_contract=True, payment_method="invoice")
    waiting = []
    for _ in range(2):
        user = make_user("coordinator")
        waiting.append({"user": user, "delegation": make_delegation(user), "api": None})
    for w in waiting:
        w["api"] = api_as(w["user"])
    return {"listing": listing, "owner": owner, "booked": booked, "first": waiting[0], "second": waiting[1]}


def join(who, beds=2, **extra):
    return who["api"].post("/waitlist", {"delegation_id": who["delegation"].id, "beds": beds, **STAY, **extra})


def entry(entry_id) -> WaitlistEntry:
    db.session.expire_all()
    return db.session.get(WaitlistEntry, entry_id)


def cancel_owner_booking(full, now=T0):
    cancellations.cancel_by_guest(Actor(full["owner"].id, "coordinator"), full["booked"].id, now=now)


def test_guest_cancellation_offers_the_freed_beds_to_the_first_entry(full):
    first = join(full["first"])
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["status"] == "waiting" and first.get_json()["offer"] is None
    second = join(full["second"])
    assert second.status_code == 201

    cancel_owner_booking(full)

    offered, still_waiting = entry(first.get_json()["id"]), entry(second.get_json()["id"])
    assert offered.status == "offered" and still_waiting.status == "waiting"
    assert offered.offer_expires_at == T0 + timedelta(hours=48)
    hold = db.session.get(Booking, offered.offer_booking_id)
    assert hold.status == "awaiting_payment" and hold.delegation_id == full["first"]["delegation"].id
    assert hold.contract is None and hold.total_ore == 2 * 2 * 50000
    states = {line.state for line in hold.lines}
    assert states == {"held"} and len(hold.lines) == 4
    # The beds are no longer free for anyone else while the offer stands.
    from app.services import availability
    assert availability.search(YEAR, date(YEAR, 6, 21), date(YEAR, 6, 23), 1, now=T0) == []
    # The coordinator hears of it by mail and sees it in the list.
    mails = db.session.scalars(select(OutboxEmail).where(
        OutboxEmail.to_address == full["first"]["user"].email)).all()
    assert any("väntelistan" in m.subject for m in mails)
    listed = full["first"]["api"].get("/waitlist").get_json()["entries"]
    assert listed[0]["status"] == "offered" and listed[0]["offer"]["booking_id"] == hold.id


def test_accepting_the_offer_forms_the_contract(full):
    entry_id = join(full["first"]).get_json()["id"]
    cancel_owner_booking(full)
    refused = full["first"]["api"].post(f"/waitlist/{entry_id}/accept", {})
    assert refused.status_code == 422 and refused.get_json()["code"] == "contract_not_accepted"
    stranger = full["second"]["api"].post(f"/waitlist/{entry_id}/accept", {"accept_contract": True})
    assert stranger.status_code == 404

    response = full["first"]["api"].post(f"/waitlist/{entry_id}/accept", {"accept_contract": True})
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    assert data["entry"]["status"] == "booked"
    booking = data["booking"]
    assert booking["status"] == "confirmed" and booking["expires_at"] is None
    assert booking["contract"]["number"].startswith(f"SP-{YEAR}-")
    assert booking["invoice"]["number"].startswith(f"F-{YEAR}-")
    assert {line["state"] for line in booking["lines"]} == {"booked"}
    contract = db.session.get(Contract, booking["contract"]["id"])
    assert contract.coordinator_actor_id == full["first"]["user"].id
    # The confirmation with the contract goes out like any invoice booking's.
    assert db.session.scalar(select(OutboxEmail).where(
        OutboxEmail.to_address == full["first"]["user"].email,
        OutboxEmail.attachment_name == f"{contract.number}.pdf")) is not None
    again = full["first"]["api"].post(f"/waitlist/{entry_id}/accept", {"accept_contract": True})
    assert again.status_code == 409


def test_an_offer_not_accepted_in_48_hours_goes_to_the_next_entry(full):
    first_id = join(full["first"]).get_json()["id"]
    second_id = join(full["second"]).get_json()["id"]
    cancel_owner_booking(full)
    first_hold = entry(first_id).offer_booking_id

    assert jobs.expire_holds(now=T0 + timedelta(hours=47)) == []
    assert entry(first_id).status == "offered"
    expired = jobs.expire_holds(now=T0 + timedelta(hours=48, seconds=1))
    assert expired == [first_hold]

    first, second = entry(first_id), entry(second_id)
    assert first.status == "expired" and db.session.get(Booking, first_hold).status == "expired"
    assert second.status == "offered" and second.offer_booking_id != first_hold
    assert second.offer_expires_at == T0 + timedelta(hours=96, seconds=1)
    late = full["first"]["api"].post(f"/waitlist/{first_id}/accept", {"accept_contract": True})
    assert late.status_code == 409
    with pytest.raises(Conflict):
        waitlist.accept_offer(Actor(full["second"]["user"].id, "coordinator"), second_id, accept_contract=True,
                              now=T0 + timedelta(hours=97))  # past its own 48 hours


def test_declining_an_offer_passes_it_on(full):
    first_id = join(full["first"]).get_json()["id"]
    second_id = join(full["second"]).get_json()["id"]
    cancel_owner_booking(full)
    response = full["first"]["api"].post(f"/waitlist/{first_id}/cancel")
    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    assert entry(second_id).status == "offered"
    released = db.session.scalars(select(BedNight.state).join(Booking).where(
        Booking.id == entry(first_id).offer_booking_id)).all()
    assert set(released) == {"released"}


def test_only_entries_the_freed_beds_can_serve_are_offered(full):
    too_many = join(full["first"], beds=3).get_json()["id"]
    too_cheap = join(full["second"], beds=1, max_price_ore=40000).get_json()["id"]
    cancel_owner_booking(full)
    assert entry(too_many).status == "waiting" and entry(too_cheap).status == "waiting"


def test_joining_is_refused_while_beds_are_free_or_twice(full, make_listing):
    entry_id = join(full["first"]).get_json()["id"]
    twice = join(full["first"])
    assert twice.status_code == 409 and twice.get_json()["code"] == "already_waiting"
    assert twice.get_json()["entry_id"] == entry_id
    make_listing(beds=2, price_ore=45000)
    free = join(full["second"])
    assert free.status_code == 409 and free.get_json()["code"] == "beds_available"
    bad = full["second"]["api"].post("/waitlist", {"delegation_id": full["second"]["delegation"].id, "beds": 0,
                                                   **STAY})
    assert bad.status_code == 422 and "beds" in bad.get_json()["errors"]
    other = full["second"]["api"].post("/waitlist", {"delegation_id": full["first"]["delegation"].id, "beds": 1,
                                                     **STAY})
    assert other.status_code == 404


def test_waitlist_pages_join_and_accept(full, client, login):
    login(full["first"]["user"])
    page = client.get("/coordinator/waitlist/")
    assert page.status_code == 200 and 'name="check_in"' in page.get_data(as_text=True)
    response = client.post("/coordinator/waitlist/", data={
        "csrf_token": csrf_from(page), "delegation_id": full["first"]["delegation"].id,
        "check_in": f"{YEAR}-06-21", "check_out": f"{YEAR}-06-23", "beds": "2"})
    assert response.status_code == 302, response.get_data(as_text=True)
    [mine] = waitlist.entries_for(Actor(full["first"]["user"].id, "coordinator"))
    refused = client.post("/coordinator/waitlist/", data={
        "csrf_token": csrf_from(page), "delegation_id": full["first"]["delegation"].id,
        "check_in": f"{YEAR}-06-21", "check_out": f"{YEAR}-06-24", "beds": "0", "max_walking_minutes": "601",
        "max_price_kr": "-1"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Mellan 1 och 100 bäddar" in html  # the service's limits, each shown
    assert "Mellan 0 och 600 minuter" in html and "öre per bädd och natt, eller lämna tomt" in html
    cancel_owner_booking(full)
    page = client.get("/coordinator/waitlist/")
    html = page.get_data(as_text=True)
    assert "Acceptera erbjudandet" in html and full["listing"].title in html
    unchecked = client.post(f"/coordinator/waitlist/{mine.id}/accept", data={"csrf_token": csrf_from(page)})
    assert unchecked.status_code == 422 and entry(mine.id).status == "offered"
    accepted = client.post(f"/coordinator/waitlist/{mine.id}/accept",
                           data={"csrf_token": csrf_from(page), "accept_contract": "y"})
    assert accepted.status_code == 302 and entry(mine.id).status == "booked"
    page = client.get("/coordinator/waitlist/").get_data(as_text=True)
    assert f"/coordinator/bookings/{entry(mine.id).offer_booking_id}" in page


def test_an_offer_is_marked_by_its_kind_and_its_payment_page_shows_no_marker(full, client, login):
    """The offer is told apart by `kind`, not by a sentinel text that the payment page used to print."""
    entry_id = join(full["first"]).get_json()["id"]
    cancel_owner_booking(full)
    hold = db.session.get(Booking, entry(entry_id).offer_booking_id)
    assert hold.kind == "waitlist_offer" and hold.refund_reason is None
    assert db.session.get(Booking, full["booked"].id).kind == "booking"
    login(full["first"]["user"])
    page = client.get(f"/bookings/{hold.id}/payment")
    assert page.status_code == 200 and "waitlist offer" not in page.get_data(as_text=True)
