"""Text fields refuse control characters and bidirectional overrides (API.md, Additions: integrity rules).

The rule lives once in app/services/text.py; these tests go through the API, a page form and the
calendar feed, on both databases.
"""
import re
from datetime import date

from app.extensions import db
from app.models import HostProfile, Listing
from app.services import booking as booking_service
from app.services.base import Actor
from tests.helpers import YEAR, csrf_from, parse_calendar

LISTING = {"title": "Rum i Visby", "description": "Nära Almedalen.", "address": "Strandgatan 1",
           "postal_code": "621 56", "walking_minutes": 10}
# Anything a feed, page or PDF may show must be free of these (TAB, LF, CR are allowed in multi-line text).
REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_api_refuses_escape_in_listing_title(make_host, api_as):
    host = make_host()
    response = api_as(host).post("/listings", json={**LISTING, "title": "Rum\x1b[31m i Visby"})
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["code"] == "invalid" and list(body["errors"]) == ["title"], body
    assert db.session.query(Listing).count() == 0


def test_api_refuses_bidi_override_in_delegation_name(make_user, api_as):
    coordinator = make_user("coordinator")
    response = api_as(coordinator).post("/delegations", json={"name": "Föreningen \u202eFramtid",
                                                              "organisation_number": "802000-1239"})
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["code"] == "invalid" and list(body["errors"]) == ["name"], body


def test_description_with_newlines_and_tabs_is_accepted(make_host, api_as):
    host = make_host()
    description = "Två rum.\r\nFrukost ingår.\n\tHandukar finns."
    response = api_as(host).post("/listings", json={**LISTING, "description": description})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["description"] == description


def test_single_line_fields_refuse_newlines(make_host, api_as):
    host = make_host()
    response = api_as(host).post("/listings", json={**LISTING, "address": "Strandgatan 1\nVisby"})
    assert response.status_code == 422, response.get_json()
    assert list(response.get_json()["errors"]) == ["address"]


def test_page_form_shows_the_error(make_host, login, client):
    host = make_host()
    login(host)
    page = client.get("/host/listings/new")
    data = {**LISTING, "title": "Rum\u2066 i Visby", "csrf_token": csrf_from(page)}
    response = client.post("/host/listings/new", data=data)
    assert response.status_code == 422
    assert "otillåtna tecken" in response.get_data(as_text=True)
    assert db.session.query(Listing).count() == 0


def test_host_calendar_feed_holds_no_control_characters(make_listing, make_user, api_as, client):
    listing = make_listing(beds=1)
    coordinator = make_user("coordinator")
    api = api_as(coordinator)
    response = api.post("/delegations", json={"name": "Föreningen\x1b[2J \u202eFramtid\x07",
                                              "organisation_number": "802000-1239"})
    if response.status_code == 201:  # the old code stored the name as given
        delegation_id = response.get_json()["id"]
    else:
        assert response.status_code == 422
        delegation_id = api.post("/delegations", json={"name": "Föreningen Framtid",
                                                       "organisation_number": "802000-1239"}).get_json()["id"]
    booking_service.create_booking(Actor(coordinator.id, "coordinator"), delegation_id=delegation_id,
                                   bed_ids=[b.id for b in listing.beds()], check_in=date(YEAR, 6, 20),
                                   check_out=date(YEAR, 6, 23), accept_contract=True, payment_method="invoice")
    host = db.session.get(HostProfile, listing.host_id).user
    url = api_as(host).get("/me").get_json()["host"]["calendar_url"]
    cal = parse_calendar(client, url)
    (event,) = cal.walk("VEVENT")
    for key in ("SUMMARY", "DESCRIPTION", "LOCATION"):
        if key in event:
            assert not REFUSED.search(str(event[key])), (key, str(event[key]))
    raw = client.get(url[url.index("/calendar"):]).get_data(as_text=True)
    assert not REFUSED.search(raw.replace("\r\n", "")), repr(raw)
