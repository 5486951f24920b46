"""Issue 10: a bed (or room) with history is removed softly: gone from the listing, search, booking, pricing,
publishing and the host's pages; its bed-nights, contracts and rooming list stay. A live booking still
refuses the removal (409 bed_has_bookings)."""
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Bed, BedNight, BedPrice, Booking, HostProfile, Room
from app.services import listings
from app.services.base import Actor
from tests.helpers import YEAR, api_book, csrf_from

AFTER_THE_STAY = datetime(YEAR, 7, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def world(make_listing, make_user, make_delegation, api_as):
    listing = make_listing(beds=3, rooms=1)
    bed_a, bed_b, bed_c = (b.id for b in listing.beds())
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    coord = api_as(coordinator)
    host_user = db.session.get(HostProfile, listing.host_id).user

    def book(bed_ids):
        response = api_book(coord, delegation.id, bed_ids)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return {"listing": listing, "a": bed_a, "b": bed_b, "c": bed_c, "room": listing.rooms[0].id, "book": book,
            "coord": coord, "coordinator": coordinator, "delegation": delegation, "host_user": host_user,
            "host": api_as(host_user)}


def _search(api, beds=1):
    response = api.get(f"/availability?year={YEAR}&check_in={YEAR}-06-21&check_out={YEAR}-06-23&beds={beds}")
    assert response.status_code == 200, response.get_json()
    return [b["bed_id"] for r in response.get_json()["results"] for b in r["free_beds"]]


def test_api_removes_a_bed_with_a_cancelled_booking_softly(world, api_as):
    host, coord = world["host"], world["coord"]
    booking = world["book"]([world["a"]])
    assert coord.post(f"/bookings/{booking['id']}/cancel").status_code == 200
    removed = host.delete(f"/beds/{world['a']}")
    assert removed.status_code == 200, removed.get_json()
    assert removed.get_json() == {"id": world["a"], "removed": True, "kept_for_history": True}
    db.session.expire_all()
    bed = db.session.get(Bed, world["a"])
    assert bed is not None and bed.removed_at is not None
    # History stays: the bed-nights, the contract and the booking's lines.
    assert db.session.scalar(select(func.count(BedNight.id)).where(BedNight.bed_id == world["a"])) == 2
    assert db.session.scalar(select(func.count(BedPrice.id)).where(BedPrice.bed_id == world["a"])) == 1
    assert coord.get(f"/contracts/{booking['contract']['id']}").status_code == 200
    lines = coord.get(f"/bookings/{booking['id']}").get_json()["lines"]
    assert {line["bed_id"] for line in lines} == {world["a"]}
    # Gone from the listing, search, booking and pricing.
    public = api_as().get(f"/listings/{world['listing'].id}").get_json()
    assert world["a"] not in [b["id"] for room in public["rooms"] for b in room["beds"]]
    assert world["a"] not in _search(api_as()) and world["b"] in _search(api_as())
    refused = coord.post("/bookings", {
        "delegation_id": world["delegation"].id, "bed_ids": [world["a"]], "check_in": f"{YEAR}-06-21",
        "check_out": f"{YEAR}-06-23", "accept_contract": True, "payment_method": "invoice"})
    assert refused.status_code == 422 and "bed_ids" in refused.get_json()["errors"]
    assert host.put(f"/beds/{world['a']}/prices/{YEAR}", {"price_ore": 40000}).status_code == 404
    assert host.post(f"/beds/{world['a']}/blocks", {"check_in": f"{YEAR}-06-21",
                                                    "check_out": f"{YEAR}-06-22"}).status_code == 404
    assert host.delete(f"/beds/{world['a']}").status_code == 404


def test_a_live_booking_still_refuses_removal(world):
    world["book"]([world["b"]])
    refused = world["host"].delete(f"/beds/{world['b']}")
    assert refused.status_code == 409 and refused.get_json()["code"] == "bed_has_bookings"
    refused_room = world["host"].delete(f"/rooms/{world['room']}")
    assert refused_room.status_code == 409 and refused_room.get_json()["code"] == "bed_has_bookings"
    db.session.expire_all()
    assert db.session.get(Bed, world["b"]).removed_at is None and db.session.get(Room, world["room"]).removed_at is None
    # A bed without history is still deleted outright.
    assert world["host"].delete(f"/beds/{world['c']}").get_json()["kept_for_history"] is False
    assert db.session.get(Bed, world["c"]) is None


def test_a_removed_blocked_bed_no_longer_stops_publishing(world):
    host, listing_id = world["host"], world["listing"].id
    extra = host.post(f"/rooms/{world['room']}/beds", {"label": "Extrasängen", "kind": "sofa"}).get_json()["id"]
    assert host.post(f"/beds/{extra}/blocks", {"check_in": f"{YEAR}-06-21",
                                               "check_out": f"{YEAR}-06-22"}).status_code == 201
    assert host.post(f"/listings/{listing_id}/unpublish").status_code == 200
    terms = world["listing"].accepted_terms_version
    unpriced = host.post(f"/listings/{listing_id}/publish", {"accept_terms_version": terms})
    assert unpriced.status_code == 422 and unpriced.get_json()["bed_ids"] == [extra]
    assert host.delete(f"/beds/{extra}").get_json()["kept_for_history"] is True
    assert host.post(f"/listings/{listing_id}/publish", {"accept_terms_version": terms}).status_code == 200


def test_a_past_booking_keeps_its_rooming_list_and_pages(world, client, login):
    booking = world["book"]([world["a"], world["b"]])
    actor = Actor(world["host_user"].id, "host")
    assert listings.remove_room(actor, world["room"], now=AFTER_THE_STAY) is True
    db.session.expire_all()
    room = db.session.get(Room, world["room"])
    assert room is not None and room.removed_at is not None
    assert db.session.get(Bed, world["c"]) is None  # never booked: deleted
    assert all(db.session.get(Bed, b).removed_at is not None for b in (world["a"], world["b"]))
    assert db.session.get(Booking, booking["id"]).status == "confirmed"
    csv = world["coord"].get(f"/delegations/{world['delegation'].id}/rooming.csv").get_data(as_text=True)
    assert csv.count("Säng 1") == 2 and csv.count("Säng 2") == 2
    assert world["host"].get(f"/bookings/{booking['id']}").status_code == 200
    assert world["host"].patch(f"/rooms/{world['room']}", {"name": "Nytt"}).status_code == 404
    login(world["host_user"])
    assert f"/host/rooms/{world['room']}" not in client.get(f"/host/listings/{world['listing'].id}").get_data(
        as_text=True)
    assert client.get(f"/host/rooms/{world['room']}").status_code == 404
    page = client.get(f"/host/bookings/{booking['id']}").get_data(as_text=True)
    assert "Säng 1" in page and "Säng 2" in page


def test_host_page_removes_a_bed_with_history(world, client, login):
    booking = world["book"]([world["a"]])
    assert world["coord"].post(f"/bookings/{booking['id']}/cancel").status_code == 200
    login(world["host_user"])
    url = f"/host/rooms/{world['room']}"
    removed = client.post(f"/host/beds/{world['a']}/remove", data={"csrf_token": csrf_from(client.get(url))})
    assert removed.status_code == 302
    db.session.expire_all()
    assert db.session.get(Bed, world["a"]).removed_at is not None
    room_page = client.get(url).get_data(as_text=True)
    assert "Dess tidigare bokningar och avtal finns kvar" in room_page
    assert f"/host/beds/{world['a']}/remove" not in room_page and f"/host/beds/{world['b']}/remove" in room_page
    assert f'id="bed-{world["a"]}"' not in client.get(f"/host/listings/{world['listing'].id}").get_data(as_text=True)
    calendar = client.get("/host/calendar").get_data(as_text=True)
    assert f'value="{world["a"]}"' not in calendar and f'value="{world["b"]}"' in calendar
    public = client.get(f"/listings/{world['listing'].id}").get_data(as_text=True)
    assert "Säng 1" not in public and "Säng 2" in public
