"""Issue 10: one person never gets beds in two places on the same night (rooming across bookings)."""
import pytest

from tests.helpers import YEAR, csrf_from


@pytest.fixture
def two_bookings(make_listing, make_user, make_delegation, api_as):
    first, second = make_listing(beds=1), make_listing(beds=1)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    coord = api_as(coordinator)
    ids = []
    for listing, (check_in, check_out) in ((first, (f"{YEAR}-06-21", f"{YEAR}-06-23")),
                                           (second, (f"{YEAR}-06-22", f"{YEAR}-06-24"))):
        response = coord.post("/bookings", {"delegation_id": delegation.id, "bed_ids": [listing.beds()[0].id],
                                            "check_in": check_in, "check_out": check_out,
                                            "accept_contract": True, "payment_method": "invoice"})
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["id"])
    members = coord.get(f"/delegations/{delegation.id}").get_json()["members"]
    return {"coord": coord, "coordinator": coordinator, "bookings": ids, "members": members,
            "beds": [first.beds()[0].id, second.beds()[0].id]}


def test_api_refuses_a_member_in_two_bookings_on_one_night(two_bookings):
    w = two_bookings
    member = w["members"][0]["id"]
    ok = w["coord"].put(f"/bookings/{w['bookings'][0]}/rooming",
                        {"assignments": [{"bed_id": w["beds"][0], "member_id": member}]})
    assert ok.status_code == 200
    refused = w["coord"].put(f"/bookings/{w['bookings'][1]}/rooming",
                             {"assignments": [{"bed_id": w["beds"][1], "member_id": member}]})
    assert refused.status_code == 409, refused.get_json()
    body = refused.get_json()
    assert body["code"] == "member_double_booked"
    assert body["conflicts"] == [{"member_id": member, "night": f"{YEAR}-06-22", "booking_id": w["bookings"][0]},
                                 {"member_id": member, "night": f"{YEAR}-06-22", "booking_id": w["bookings"][1]}]
    # Nothing was saved; another member may take the bed.
    second = w["coord"].get(f"/bookings/{w['bookings'][1]}").get_json()
    assert {line["member_id"] for line in second["lines"]} == {None}
    other = w["coord"].put(f"/bookings/{w['bookings'][1]}/rooming",
                           {"assignments": [{"bed_id": w["beds"][1], "member_id": w["members"][1]["id"]}]})
    assert other.status_code == 200


def test_rooming_page_refuses_a_member_in_two_bookings_on_one_night(two_bookings, client, login):
    w = two_bookings
    member = w["members"][0]["id"]
    assert w["coord"].put(f"/bookings/{w['bookings'][0]}/rooming",
                          {"assignments": [{"bed_id": w["beds"][0], "member_id": member}]}).status_code == 200
    login(w["coordinator"])
    url = f"/coordinator/bookings/{w['bookings'][1]}/rooming"
    page = client.get(url)
    response = client.post(url, data={"csrf_token": csrf_from(page), f"bed_{w['beds'][1]}": str(member)})
    assert response.status_code == 409
    assert "en bädd per natt" in response.get_data(as_text=True)
    second = w["coord"].get(f"/bookings/{w['bookings'][1]}").get_json()
    assert {line["member_id"] for line in second["lines"]} == {None}
