"""Issue 10: a coordinator stores a phone (page and API); the host of a confirmed booking sees it."""
import pytest

from app.extensions import db
from app.models import HostProfile, User
from tests.helpers import YEAR, csrf_from

PHONE = "+46 70 123 45 67"


@pytest.fixture
def booked(make_listing, make_user, make_delegation, api_as):
    listing = make_listing(beds=1)
    coordinator = make_user("coordinator", name="Sara Samordnare")
    delegation = make_delegation(coordinator)
    coord = api_as(coordinator)
    response = coord.post("/bookings", {"delegation_id": delegation.id, "bed_ids": [b.id for b in listing.beds()],
                                        "check_in": f"{YEAR}-06-21", "check_out": f"{YEAR}-06-23",
                                        "accept_contract": True, "payment_method": "invoice"})
    assert response.status_code == 201, response.get_json()
    host_user = db.session.get(HostProfile, listing.host_id).user
    return {"booking_id": response.get_json()["id"], "coordinator": coordinator, "coord": coord,
            "host_user": host_user, "host": api_as(host_user)}


def test_api_sets_the_phone_and_the_host_sees_it(booked):
    saved = booked["coord"].patch("/me", {"phone": f"  {PHONE} "})
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["phone"] == PHONE and booked["coord"].get("/me").get_json()["phone"] == PHONE
    contact = booked["host"].get(f"/bookings/{booked['booking_id']}").get_json()["coordinator_contact"]
    assert contact == {"name": "Sara Samordnare", "email": booked["coordinator"].email, "phone": PHONE}
    cleared = booked["coord"].patch("/me", {"phone": None})
    assert cleared.status_code == 200 and cleared.get_json()["phone"] is None
    assert booked["host"].get(f"/bookings/{booked['booking_id']}").get_json()["coordinator_contact"]["phone"] is None


@pytest.mark.parametrize("phone", ["abc", "12345", "070-123\u202e4567", "070\x07123456", "+46 70 + 123 45 67",
                                   "0" * 41, 70123456])
def test_api_refuses_what_is_not_a_phone(booked, phone):
    refused = booked["coord"].patch("/me", {"phone": phone})
    assert refused.status_code == 422 and "phone" in refused.get_json()["errors"], refused.get_json()
    assert db.session.get(User, booked["coordinator"].id).phone is None


def test_only_a_coordinator_sets_a_phone_here(booked):
    assert booked["host"].patch("/me", {"phone": PHONE}).status_code == 403
    assert booked["coord"].patch("/me", {}).status_code == 422


def test_page_sets_the_phone_and_the_hosts_booking_page_shows_it(booked, client, login):
    login(booked["coordinator"])
    dashboard = client.get("/coordinator/")
    assert "/coordinator/contact" in dashboard.get_data(as_text=True)
    page = client.get("/coordinator/contact")
    assert page.status_code == 200
    bad = client.post("/coordinator/contact", data={"csrf_token": csrf_from(page), "phone": "ring mig"})
    assert bad.status_code == 422 and "Ange ett telefonnummer" in bad.get_data(as_text=True)
    saved = client.post("/coordinator/contact", data={"csrf_token": csrf_from(page), "phone": PHONE})
    assert saved.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, booked["coordinator"].id).phone == PHONE
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/"))})
    login(booked["host_user"])
    html = client.get(f"/host/bookings/{booked['booking_id']}").get_data(as_text=True)
    assert PHONE in html and 'href="tel:+46701234567"' in html
