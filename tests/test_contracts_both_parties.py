"""Issue 10: contracts for both parties: verification with status, the host reads its contract, contacts."""
import pytest

from app.extensions import db
from app.models import Contract, HostProfile
from tests.helpers import YEAR


@pytest.fixture
def booked(make_listing, make_user, make_delegation, api_as, login):
    listing = make_listing(beds=2)
    coordinator = make_user("coordinator", name="Sara Samordnare")
    delegation = make_delegation(coordinator)
    coord = api_as(coordinator)
    response = coord.post("/bookings", {"delegation_id": delegation.id, "bed_ids": [b.id for b in listing.beds()],
                                        "check_in": f"{YEAR}-06-21", "check_out": f"{YEAR}-06-23",
                                        "accept_contract": True, "payment_method": "invoice"})
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    host_user = db.session.get(HostProfile, listing.host_id).user
    return {"booking": data, "contract": db.session.get(Contract, data["contract"]["id"]), "coord": coord,
            "coordinator": coordinator, "host_user": host_user, "host": api_as(host_user)}


def test_verify_says_the_bookings_status_through_api_and_page(booked, api_as, client):
    contract = booked["contract"]
    query = f"/contracts/verify?number={contract.number}&sha256={contract.sha256}"
    assert api_as().get(query).get_json() == {"valid": True, "status": "confirmed", "amended": False}
    assert booked["coord"].post(f"/bookings/{booked['booking']['id']}/cancel").status_code == 200
    assert api_as().get(query).get_json() == {"valid": True, "status": "cancelled_by_guest", "amended": False}
    page = client.get(query).get_data(as_text=True)
    assert "Äkta och oförändrat — bokningen avbokades av gästen." in page
    assert "Avtalet är äkta och oförändrat." not in page
    wrong = api_as().get(f"/contracts/verify?number={contract.number}&sha256={'0' * 64}").get_json()
    assert wrong == {"valid": False, "status": None, "amended": False}


def test_host_reads_its_contract_and_pdf_through_api_and_pages(booked, client, login):
    contract = booked["contract"]
    assert booked["host"].get(f"/contracts/{contract.id}").status_code == 200
    pdf = booked["host"].get(f"/contracts/{contract.id}/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    login(booked["host_user"])
    listing_page = client.get("/host/bookings").get_data(as_text=True)
    assert f'/host/bookings/{booked["booking"]["id"]}"' in listing_page
    page = client.get(f"/host/bookings/{booked['booking']['id']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"/host/contracts/{contract.id}.pdf" in html and "/host/guests.csv" in html
    assert booked["coordinator"].email in html and "Sara Samordnare" in html
    web_pdf = client.get(f"/host/contracts/{contract.id}.pdf")
    assert web_pdf.status_code == 200 and web_pdf.data.startswith(b"%PDF")


def test_each_party_sees_the_others_contact_once_confirmed(booked, client, login):
    booking_id = booked["booking"]["id"]
    for_coordinator = booked["coord"].get(f"/bookings/{booking_id}").get_json()
    assert for_coordinator["host_contact"] == {"name": f"{booked['host_user'].name} AB",
                                               "email": booked["host_user"].email, "phone": "+46 498 123 456"}
    assert "coordinator_contact" not in for_coordinator
    for_host = booked["host"].get(f"/bookings/{booking_id}").get_json()
    assert for_host["coordinator_contact"] == {"name": "Sara Samordnare", "email": booked["coordinator"].email,
                                               "phone": None}
    assert "host_contact" not in for_host
    login(booked["coordinator"])
    page = client.get(f"/coordinator/bookings/{booking_id}").get_data(as_text=True)
    assert booked["host_user"].email in page and "+46 498 123 456" in page
    # A cancelled booking no longer hands out contacts.
    assert booked["coord"].post(f"/bookings/{booking_id}/cancel").status_code == 200
    assert "host_contact" not in booked["coord"].get(f"/bookings/{booking_id}").get_json()
