"""Issue 10: hosts rename and remove rooms and beds (API and pages); a booked bed stays."""
import pytest

from app.extensions import db
from app.models import Bed, HostProfile, Room
from tests.helpers import YEAR, csrf_from


@pytest.fixture
def world(make_listing, make_user, make_delegation, api_as):
    listing = make_listing(beds=2, rooms=2)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    rooms = sorted(listing.rooms, key=lambda r: r.id)
    booked_bed = rooms[0].beds[0].id
    response = api_as(coordinator).post("/bookings", {
        "delegation_id": delegation.id, "bed_ids": [booked_bed], "check_in": f"{YEAR}-06-21",
        "check_out": f"{YEAR}-06-23", "accept_contract": True, "payment_method": "invoice"})
    assert response.status_code == 201, response.get_json()
    host_user = db.session.get(HostProfile, listing.host_id).user
    return {"listing": listing, "rooms": [r.id for r in rooms], "booked_bed": booked_bed,
            "free_bed": rooms[0].beds[1].id, "host_user": host_user, "host": api_as(host_user)}


def test_api_renames_and_removes_rooms_and_beds(world):
    host = world["host"]
    assert host.patch(f"/rooms/{world['rooms'][0]}", {"name": "Vindsrummet"}).get_json()["name"] == "Vindsrummet"
    renamed = host.patch(f"/beds/{world['booked_bed']}", {"label": "Fönstersängen"})
    assert renamed.status_code == 200 and renamed.get_json()["label"] == "Fönstersängen"
    refused = host.delete(f"/beds/{world['booked_bed']}")
    assert refused.status_code == 409 and refused.get_json()["code"] == "bed_has_bookings"
    refused_room = host.delete(f"/rooms/{world['rooms'][0]}")
    assert refused_room.status_code == 409 and refused_room.get_json()["code"] == "bed_has_bookings"
    assert host.delete(f"/beds/{world['free_bed']}").get_json()["removed"] is True
    assert db.session.get(Bed, world["free_bed"]) is None
    assert host.delete(f"/rooms/{world['rooms'][1]}").get_json()["removed"] is True
    db.session.expire_all()
    assert db.session.get(Room, world["rooms"][1]) is None and db.session.get(Room, world["rooms"][0]) is not None


def test_host_pages_rename_and_remove(world, client, login):
    login(world["host_user"])
    listing_page = client.get(f"/host/listings/{world['listing'].id}").get_data(as_text=True)
    url = f"/host/rooms/{world['rooms'][0]}"
    assert url in listing_page
    page = client.get(url)
    assert page.status_code == 200
    saved = client.post(url, data={"csrf_token": csrf_from(page), "room-name": "Vindsrummet"})
    assert saved.status_code == 302 and db.session.get(Room, world["rooms"][0]).name == "Vindsrummet"
    refused = client.post(f"/host/beds/{world['booked_bed']}/remove", data={"csrf_token": csrf_from(client.get(url))})
    assert refused.status_code == 409 and "har en pågående bokning" in refused.get_data(as_text=True)
    removed = client.post(f"/host/beds/{world['free_bed']}/remove", data={"csrf_token": csrf_from(client.get(url))})
    assert removed.status_code == 302
    db.session.expire_all()
    assert db.session.get(Bed, world["free_bed"]) is None
