"""Issue 9: a listing's address, postal code and walking minutes stand while it has a live booking."""
from datetime import UTC, datetime, timedelta

import pytest

from app.extensions import db
from app.models import Listing
from app.services import cancellations, listings
from app.services.base import Actor
from app.services.errors import DomainError
from tests.helpers import YEAR, api_book, csrf_from


def body(listing, **change):
    values = {"title": listing.title, "description": listing.description, "address": listing.address,
              "postal_code": listing.postal_code, "walking_minutes": listing.walking_minutes}
    values.update(change)
    return values


@pytest.mark.parametrize("change", [{"address": "Hamngatan 2"}, {"postal_code": "621 57"},
                                    {"walking_minutes": 3}])
def test_api_refuses_moving_a_listing_with_a_live_booking(api_world, change):
    listing = api_world["listing"]
    assert api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:1]).status_code == 201
    response = api_world["host"].put(f"/listings/{listing.id}", body(listing, **change))
    print("PUT answered", response.status_code, response.get_json())
    assert response.status_code == 409 and response.get_json()["code"] == "listing_has_bookings"
    db.session.expire_all()
    assert db.session.get(Listing, listing.id).address == "Strandgatan 1"
    assert db.session.get(Listing, listing.id).walking_minutes == 10
    # Title and description may still change.
    fine = api_world["host"].put(f"/listings/{listing.id}", body(listing, title="Nytt namn", description="Ny text"))
    assert fine.status_code == 200 and fine.get_json()["title"] == "Nytt namn"


def test_card_hold_counts_and_cancelled_or_finished_bookings_do_not(api_world, make_booking):
    listing, host = api_world["listing"], Actor(api_world["host_user"].id, "host")
    coordinator = Actor(api_world["coordinator"].id, "coordinator")
    hold = make_booking(delegation=api_world["delegation"], bed_ids=api_world["bed_ids"][:1],
                        payment_method="card")
    assert hold.status == "awaiting_payment"
    with pytest.raises(DomainError) as refused:
        listings.update_listing(host, listing.id, **body(listing, address="Hamngatan 2"))
    assert refused.value.code == "listing_has_bookings"
    cancellations.cancel_by_guest(coordinator, hold.id)
    invoice = make_booking(delegation=api_world["delegation"], bed_ids=api_world["bed_ids"][:1],
                        payment_method="invoice")
    with pytest.raises(DomainError):
        listings.update_listing(host, listing.id, **body(listing, address="Hamngatan 2"))
    # The morning after the last night (22 June) the stay is over: the listing may move.
    after = datetime(YEAR, 6, 23, 8, tzinfo=UTC)
    moved = listings.update_listing(host, listing.id, **body(listing, address="Hamngatan 2"), now=after)
    assert moved.address == "Hamngatan 2" and invoice.id
    # ...but not on the last night itself.
    with pytest.raises(DomainError):
        listings.update_listing(host, listing.id, **body(listing, postal_code="621 57"),
                                now=after - timedelta(days=1))


def test_host_edit_page_refuses_with_a_flash(app, api_world, login, client):
    listing = api_world["listing"]
    assert api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:1]).status_code == 201
    login(api_world["host_user"])
    page = client.get(f"/host/listings/{listing.id}/edit")
    data = {**body(listing, postal_code="621 57"), "csrf_token": csrf_from(page)}
    response = client.post(f"/host/listings/{listing.id}/edit", data=data)
    print("edit page answered", response.status_code)
    assert response.status_code == 409
    assert "bokning" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Listing, listing.id).postal_code == "621 56"
    data = {**body(listing, title="Nytt namn"), "csrf_token": csrf_from(page)}
    assert client.post(f"/host/listings/{listing.id}/edit", data=data).status_code == 302
