"""CSV exports: the host's guest list and the rooming list, safe to open in a spreadsheet."""

from app.extensions import db
from app.models import HostProfile
from app.services import delegations, rooming
from app.services.base import Actor


def _booked_world(make_listing, make_user, make_delegation, make_booking):
    listing = make_listing(beds=2)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator, members=0)
    actor = Actor(coordinator.id, "coordinator")
    sneaky = delegations.add_member(actor, delegation.id, '=HYPERLINK("http://evil.example")', "x@example.se")
    booking = make_booking(listing=listing, delegation=delegation)
    rooming.assign_rooming(actor, booking.id, [{"bed_id": listing.beds()[0].id, "member_id": sneaky.id}])
    return listing, delegation, booking, coordinator


def test_host_guest_list_csv(client, login, make_listing, make_user, make_delegation, make_booking):
    listing, delegation, booking, _ = _booked_world(make_listing, make_user, make_delegation, make_booking)
    host = db.session.get(HostProfile, listing.host_id).user
    login(host)
    response = client.get("/host/guests.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.data.decode("utf-8")
    lines = text.lstrip("\ufeff").splitlines()
    assert text.startswith("\ufeff") and lines[0].split(";")[:5] == ["night", "listing", "room", "bed", "organisation"]
    assert len(lines) == 1 + 2 * 2  # two beds, two nights
    assert booking.contract.number in text and delegation.name in text
    assert "'=HYPERLINK" in text and ";=HYPERLINK" not in text  # a formula is neutralised


def test_guest_list_is_the_hosts_own(client, login, make_listing, make_user, make_delegation, make_host, make_booking):
    _booked_world(make_listing, make_user, make_delegation, make_booking)
    login(make_host())
    lines = client.get("/host/guests.csv").data.decode("utf-8").lstrip("\ufeff").splitlines()
    assert lines == [lines[0]]  # only the header: nothing of another host's guests
    coordinator_client = client.application.test_client()
    assert coordinator_client.get("/host/guests.csv").status_code == 302


def test_rooming_csv_neutralises_formulas(api_as, make_listing, make_user, make_delegation, make_booking):
    _, delegation, _, coordinator = _booked_world(make_listing, make_user, make_delegation, make_booking)
    text = api_as(coordinator).get(f"/delegations/{delegation.id}/rooming.csv").data.decode("utf-8")
    assert "'=HYPERLINK" in text and ";=HYPERLINK" not in text
