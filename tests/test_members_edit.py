"""Issue 10: members can be renamed and removed (API and pages); a member with a bed stays."""
import pytest

from app.extensions import db
from app.models import Member
from tests.helpers import YEAR, csrf_from


@pytest.fixture
def world(make_listing, make_user, make_delegation, api_as):
    listing = make_listing(beds=1)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    coord = api_as(coordinator)
    booking = coord.post("/bookings", {"delegation_id": delegation.id, "bed_ids": [listing.beds()[0].id],
                                       "check_in": f"{YEAR}-06-21", "check_out": f"{YEAR}-06-23",
                                       "accept_contract": True, "payment_method": "invoice"}).get_json()
    members = coord.get(f"/delegations/{delegation.id}").get_json()["members"]
    assert coord.put(f"/bookings/{booking['id']}/rooming", {"assignments": [
        {"bed_id": listing.beds()[0].id, "member_id": members[0]["id"]}]}).status_code == 200
    return {"coord": coord, "coordinator": coordinator, "delegation": delegation, "members": members,
            "booking": booking}


def test_api_renames_and_removes_members(world):
    d, (bedded, free) = world["delegation"].id, world["members"]
    renamed = world["coord"].patch(f"/delegations/{d}/members/{bedded['id']}", {"name": "Anna Ny"})
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "Anna Ny"
    csv = world["coord"].get(f"/delegations/{d}/rooming.csv").get_data(as_text=True)
    assert "Anna Ny" in csv
    assert world["coord"].patch(f"/delegations/{d}/members/{bedded['id']}", {"email": "nope"}).status_code == 422
    refused = world["coord"].delete(f"/delegations/{d}/members/{bedded['id']}")
    assert refused.status_code == 409 and refused.get_json()["code"] == "member_has_beds"
    assert world["coord"].delete(f"/delegations/{d}/members/{free['id']}").get_json()["removed"] is True
    assert db.session.get(Member, free["id"]) is None
    assert world["coord"].delete(f"/delegations/{d}/members/{free['id']}").status_code == 404


def test_pages_rename_and_remove_members(world, client, login):
    d, (bedded, free) = world["delegation"].id, world["members"]
    login(world["coordinator"])
    overview = client.get(f"/coordinator/delegations/{d}").get_data(as_text=True)
    url = f"/coordinator/delegations/{d}/members/{free['id']}"
    assert url in overview
    page = client.get(url)
    assert page.status_code == 200
    saved = client.post(url, data={"csrf_token": csrf_from(page), "name": "Bo Nytt", "email": "bo@example.se"})
    assert saved.status_code == 302 and db.session.get(Member, free["id"]).name == "Bo Nytt"
    bedded_url = f"/coordinator/delegations/{d}/members/{bedded['id']}"
    refused = client.post(bedded_url + "/remove", data={"csrf_token": csrf_from(client.get(bedded_url))})
    assert refused.status_code == 409 and "rumsfördelningen" in refused.get_data(as_text=True)
    removed = client.post(url + "/remove", data={"csrf_token": csrf_from(client.get(url))})
    assert removed.status_code == 302
    db.session.expire_all()
    assert db.session.get(Member, free["id"]) is None
