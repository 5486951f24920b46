"""Issue 12, orders: several listings booked in one step, one booking and contract per listing, all or none."""
from datetime import date

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import BedNight, Booking, Contract, Order
from app.services import orders
from app.services.base import Actor
from app.services.booking import create_booking
from app.services.errors import DomainError
from tests.helpers import YEAR

CHECK_IN, CHECK_OUT = f"{YEAR}-06-21", f"{YEAR}-06-23"


@pytest.fixture
def world(make_listing, make_delegation, make_user, api_as):
    """Three published listings (3, 2, 2 beds at 500, 400, 300 kr) and a coordinator with a delegation."""
    listings = [make_listing(beds=3, price_ore=50000), make_listing(beds=2, price_ore=40000),
                make_listing(beds=2, price_ore=30000)]
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    return {"beds": [[b.id for b in listing.beds()] for listing in listings], "listings": listings,
            "coordinator": coordinator, "delegation": delegation, "coord": api_as(coordinator)}


def order_body(world, parts, method="invoice", **extra):
    return {"delegation_id": world["delegation"].id, "check_in": CHECK_IN, "check_out": CHECK_OUT,
            "parts": [{"bed_ids": p} for p in parts], "accept_contract": True, "payment_method": method, **extra}


def counts():
    db.session.rollback()
    return (db.session.scalar(select(func.count(Order.id))), db.session.scalar(select(func.count(Booking.id))),
            db.session.scalar(select(func.count(Contract.id))),
            db.session.scalar(select(func.count(BedNight.id)).where(BedNight.state.in_(("held", "booked")))))


def test_an_order_books_every_listing_with_its_own_contract(world, api_as, make_user, make_admin):
    beds = world["beds"]
    response = world["coord"].post("/orders", order_body(world, [beds[1], beds[0][:2]]))

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "confirmed"
    assert body["total_ore"] == (2 * 40000 + 2 * 50000) * 2
    assert [b["listing_id"] for b in body["bookings"]] == sorted(listing.id for listing in world["listings"][:2])
    assert all(b["status"] == "confirmed" and b["contract"]["number"].startswith(f"SP-{YEAR}-")
               and b["invoice"]["number"] for b in body["bookings"])
    assert sum(b["total_ore"] for b in body["bookings"]) == body["total_ore"]
    assert {(line["bed_id"], line["night"]) for b in body["bookings"] for line in b["lines"]} == {
        (bed, night) for bed in beds[1] + beds[0][:2] for night in (f"{YEAR}-06-21", f"{YEAR}-06-22")}
    assert counts() == (1, 2, 2, 8)
    assert {b.order_id for b in db.session.scalars(select(Booking))} == {body["id"]}
    # GET answers the same shape to its coordinator and an admin; anyone else gets 404.
    assert world["coord"].get(f"/orders/{body['id']}").get_json() == body
    assert api_as(make_admin()).get(f"/orders/{body['id']}").get_json()["id"] == body["id"]
    other = api_as(make_user("coordinator")).get(f"/orders/{body['id']}")
    assert other.status_code == 404


def test_a_part_spanning_listings_or_two_parts_in_one_listing_are_refused(world):
    beds = world["beds"]
    spans = world["coord"].post("/orders", order_body(world, [[beds[0][0], beds[1][0]], beds[2]]))
    assert spans.status_code == 422 and spans.get_json()["code"] == "beds_span_listings"
    shares = world["coord"].post("/orders", order_body(world, [[beds[0][0]], [beds[0][1]]]))
    assert shares.status_code == 422 and shares.get_json()["code"] == "parts_share_listing"
    same_bed = world["coord"].post("/orders", order_body(world, [[beds[0][0]], [beds[0][0], beds[0][1]]]))
    assert same_bed.status_code == 422 and same_bed.get_json()["code"] == "parts_share_listing"
    empty = world["coord"].post("/orders", order_body(world, []))
    assert empty.status_code == 422 and "parts" in empty.get_json()["errors"]
    unaccepted = world["coord"].post("/orders", order_body(world, [beds[0]], accept_contract=False))
    assert unaccepted.status_code == 422 and unaccepted.get_json()["code"] == "contract_not_accepted"
    assert counts() == (0, 0, 0, 0)


def test_a_conflict_lists_every_part_and_books_nothing(world, make_delegation):
    beds = world["beds"]
    someone = Actor(world["coordinator"].id, "coordinator")
    for bed in (beds[0][2], beds[2][0]):
        create_booking(someone, delegation_id=world["delegation"].id, bed_ids=[bed],
                       check_in=date(YEAR, 6, 22), check_out=date(YEAR, 6, 23), accept_contract=True,
                       payment_method="invoice")
    before = counts()

    response = world["coord"].post("/orders", order_body(world, [beds[2], beds[1], beds[0]]))

    assert response.status_code == 409
    body = response.get_json()
    assert body["code"] == "bed_nights_taken"
    assert sorted((c["bed_id"], c["night"]) for c in body["conflicts"]) == sorted(
        [(beds[0][2], f"{YEAR}-06-22"), (beds[2][0], f"{YEAR}-06-22")])
    assert counts() == before


def test_a_part_lost_at_insert_takes_the_whole_order_back(world, monkeypatch):
    """The UNIQUE index refuses the second part after the first was inserted: nothing of the order stays."""
    beds = world["beds"]
    create_booking(Actor(world["coordinator"].id, "coordinator"), delegation_id=world["delegation"].id,
                   bed_ids=[beds[2][1]], check_in=date(YEAR, 6, 21), check_out=date(YEAR, 6, 22),
                   accept_contract=True, payment_method="invoice")
    before = counts()
    # As if another transaction took the bed-night between the checks and the insert.
    monkeypatch.setattr(orders, "occupants", lambda *args: ([], []))
    monkeypatch.setattr(orders, "release_expired_holds", lambda *args: [])

    response = world["coord"].post("/orders", order_body(world, [beds[0], beds[2]]))

    assert response.status_code == 409, response.get_json()
    assert response.get_json()["conflicts"] == [{"bed_id": beds[2][1], "night": f"{YEAR}-06-21"}]
    assert counts() == before


def test_idempotency_key_gives_the_first_answer_and_one_order(world):
    beds = world["beds"]
    headers = {"Idempotency-Key": "order-1"}
    first = world["coord"].post("/orders", order_body(world, [beds[0], beds[1]]), headers=headers)
    again = world["coord"].post("/orders", order_body(world, [beds[0], beds[1]]), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    other = world["coord"].post("/orders", order_body(world, [beds[2]]), headers=headers)
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency_key_reused"
    assert counts()[:2] == (1, 2)


def test_organisation_limits_count_the_whole_order(make_season, make_listing, make_delegation, make_user, api_as):
    make_season(max_beds_per_organisation=6, max_open_holds=1)
    first, second = make_listing(beds=2), make_listing(beds=2)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    api = api_as(coordinator)
    body = {"delegation_id": delegation.id, "check_in": CHECK_IN, "check_out": CHECK_OUT, "accept_contract": True,
            "payment_method": "invoice", "parts": [{"bed_ids": [b.id for b in first.beds()]},
                                                   {"bed_ids": [b.id for b in second.beds()]}]}
    # 2 x 2 beds x 2 nights = 8 bed-nights > 6: refused as a whole, though each part (4) would fit.
    refused = api.post("/orders", body)
    assert refused.status_code == 422 and refused.get_json()["code"] == "organisation_limit"
    assert refused.get_json()["requested"] == 8
    # A card order of two bookings is one hold, within max_open_holds = 1.
    body["parts"] = [{"bed_ids": [first.beds()[0].id]}, {"bed_ids": [second.beds()[0].id]}]
    body["payment_method"] = "card"
    held = api.post("/orders", body)
    assert held.status_code == 201, held.get_json()
    assert held.get_json()["status"] == "awaiting_payment"
    assert {b["status"] for b in held.get_json()["bookings"]} == {"awaiting_payment"}
    assert counts() == (1, 2, 2, 4)


def test_only_coordinators_order_for_their_own_delegation(world, make_user, api_as):
    beds = world["beds"]
    stranger = api_as(make_user("coordinator")).post("/orders", order_body(world, [beds[0]]))
    assert stranger.status_code == 404
    host = api_as(make_user("host")).post("/orders", order_body(world, [beds[0]]))
    assert host.status_code == 403
    with pytest.raises(DomainError):
        orders.create_order(Actor(world["coordinator"].id, "coordinator"), delegation_id=world["delegation"].id,
                            check_in=date(YEAR, 6, 21), check_out=date(YEAR, 6, 23), parts=[{"bed_ids": ["x"]}],
                            accept_contract=True, payment_method="invoice")
    assert counts() == (0, 0, 0, 0)
