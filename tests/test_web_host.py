"""Host pages through real forms with CSRF: vetting, listings, prices, publishing, calendar, cancellation."""
from datetime import date, timedelta

import pytest

from app.extensions import db
from app.models import BedNight, BedPrice, Booking, HostProfile, Listing
from app.services import booking as booking_service
from app.services import listings
from app.services.base import Actor
from tests.helpers import NOW, YEAR, csrf_from


def _profile_form(**overrides):
    data = {"legal_name": "Karin Ek AB", "phone": "+46 70 123 45 67", "address": "Strandgatan 1",
            "postal_code": "621 56", "right_to_rent": "y"}
    data.update(overrides)
    return data


def _draft_listing(host, beds=1):
    actor = Actor(host.id, "host")
    listing = listings.create_listing(actor, title="Rum i Visby", description="", address="Strandgatan 1",
                                      postal_code="621 56", walking_minutes=5)
    room = listings.add_room(actor, listing.id, "Rum 1")
    bed_ids = [listings.add_bed(actor, room.id, f"Säng {i + 1}", "single").id for i in range(beds)]
    return listing, room, bed_ids


def test_host_submits_vetting_form(client, login, make_user):
    host = make_user("host")
    login(host)
    page = client.get("/host/profile")
    assert page.status_code == 200
    response = client.post("/host/profile", data={**_profile_form(), "csrf_token": csrf_from(page)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/host/")
    profile = db.session.get(HostProfile, host.id)
    assert profile.vetting_status == "pending" and profile.legal_name == "Karin Ek AB"
    dashboard = client.get("/host/").get_data(as_text=True)
    assert "Väntar på granskning" in dashboard and f"/calendar/host/{profile.calendar_token}.ics" in dashboard


def test_vetting_form_shows_postal_code_refusal_next_to_the_field(client, login, make_user):
    host = make_user("host")
    login(host)
    page = client.get("/host/profile")
    response = client.post("/host/profile",
                           data={**_profile_form(postal_code="111 22"), "csrf_token": csrf_from(page)})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    field_block = html[html.index('id="postal_code"'):html.index('id="right_to_rent"')]
    assert "62x xx" in field_block and 'class="error"' in field_block
    assert db.session.get(HostProfile, host.id) is None


def test_vetting_form_requires_the_right_to_rent_declaration(client, login, make_user):
    host = make_user("host")
    login(host)
    page = client.get("/host/profile")
    data = {**_profile_form(), "csrf_token": csrf_from(page)}
    del data["right_to_rent"]
    response = client.post("/host/profile", data=data)
    assert response.status_code == 422
    assert "Du måste intyga att du har rätt att hyra ut bostaden" in response.get_data(as_text=True)
    assert db.session.get(HostProfile, host.id) is None


def test_post_without_csrf_token_is_refused(client, login, make_user):
    host = make_user("host")
    login(host)
    response = client.post("/host/profile", data=_profile_form())
    assert response.status_code == 400
    assert db.session.get(HostProfile, host.id) is None


def test_host_creates_listing_room_and_bed_through_the_pages(client, login, make_host, make_season):
    make_season()
    host = make_host()
    login(host)
    page = client.get("/host/listings/new")
    created = client.post("/host/listings/new", data={
        "title": "Vindsrummet", "description": "Utsikt över havet.", "address": "Strandgatan 3",
        "postal_code": "62155", "walking_minutes": "4", "csrf_token": csrf_from(page)})
    assert created.status_code == 302
    listing = db.session.query(Listing).filter_by(host_id=host.id).one()
    assert listing.postal_code == "621 55" and not listing.published
    manage = client.get(f"/host/listings/{listing.id}")
    token = csrf_from(manage)
    assert client.post(f"/host/listings/{listing.id}/rooms",
                       data={"room-name": "Sovrum", "csrf_token": token}).status_code == 302
    room = listing.rooms[0]
    assert client.post(f"/host/rooms/{room.id}/beds", data={f"room-{room.id}-label": "Säng A",
                                                            f"room-{room.id}-kind": "bunk",
                                                            "csrf_token": token}).status_code == 302
    db.session.expire_all()
    assert [(b.label, b.kind) for b in listing.beds()] == [("Säng A", "bunk")]
    assert "Våningssäng" in client.get(f"/host/listings/{listing.id}").get_data(as_text=True)


def test_listing_outside_gotland_is_refused_on_the_form(client, login, make_host):
    host = make_host()
    login(host)
    page = client.get("/host/listings/new")
    response = client.post("/host/listings/new", data={
        "title": "Rum", "address": "Drottninggatan 1", "postal_code": "111 22", "walking_minutes": "4",
        "csrf_token": csrf_from(page)})
    assert response.status_code == 422 and "62x xx" in response.get_data(as_text=True)
    assert db.session.query(Listing).count() == 0


def test_price_above_cap_shows_the_highest_allowed_price(client, login, make_host, make_season):
    make_season(bookings_open_at=NOW + timedelta(days=30))  # cap 900 kr
    host = make_host()
    listing, _room, (bed_id,) = _draft_listing(host)
    login(host)
    page = client.get(f"/host/listings/{listing.id}")
    response = client.post(f"/host/beds/{bed_id}/price", data={f"bed-{bed_id}-price": "950",
                                                               "csrf_token": csrf_from(page)})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Högsta tillåtna pris: 900 kr per natt." in html
    assert db.session.query(BedPrice).filter_by(bed_id=bed_id).count() == 0
    accepted = client.post(f"/host/beds/{bed_id}/price", data={f"bed-{bed_id}-price": "650,50",
                                                               "csrf_token": csrf_from(page)})
    assert accepted.status_code == 302
    assert db.session.query(BedPrice).filter_by(bed_id=bed_id).one().price_ore == 65050


def test_price_form_refuses_nonsense_without_a_500(client, login, make_host, make_season):
    make_season()
    host = make_host()
    listing, _room, (bed_id,) = _draft_listing(host)
    login(host)
    token = csrf_from(client.get(f"/host/listings/{listing.id}"))
    for typed in ("abc", "Infinity", "NaN", "99999999999"):
        response = client.post(f"/host/beds/{bed_id}/price", data={f"bed-{bed_id}-price": typed,
                                                                   "csrf_token": token})
        assert response.status_code == 422, typed
    assert db.session.query(BedPrice).filter_by(bed_id=bed_id).count() == 0


def test_calendar_year_too_large_for_the_database_shows_the_latest_season(client, login, make_host, make_season):
    make_season()
    login(make_host())
    response = client.get("/host/calendar?year=" + "9" * 20)
    assert response.status_code == 200 and f"{YEAR}" in response.get_data(as_text=True)


def test_unapproved_host_cannot_publish_through_the_form(client, login, make_host, make_season):
    season = make_season()
    host = make_host(approved=False)
    listing, _room, (bed_id,) = _draft_listing(host)
    login(host)
    page = client.get(f"/host/listings/{listing.id}")
    token = csrf_from(page)
    assert client.post(f"/host/beds/{bed_id}/price", data={f"bed-{bed_id}-price": "500",
                                                           "csrf_token": token}).status_code == 302
    response = client.post(f"/host/listings/{listing.id}/publish",
                           data={"terms_version": season.terms_version, "accept_terms": "y", "csrf_token": token})
    assert response.status_code == 403
    assert "Bara värdar som Sängplats har godkänt kan publicera" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Listing, listing.id).published is False


def test_publish_needs_the_terms_checkbox_then_unpublish(client, login, make_host, make_season):
    season = make_season()
    host = make_host()
    listing, _room, (bed_id,) = _draft_listing(host)
    login(host)
    page = client.get(f"/host/listings/{listing.id}")
    assert season.terms_text.splitlines()[0] in page.get_data(as_text=True)
    token = csrf_from(page)
    client.post(f"/host/beds/{bed_id}/price", data={f"bed-{bed_id}-price": "500", "csrf_token": token})
    unticked = client.post(f"/host/listings/{listing.id}/publish",
                           data={"terms_version": season.terms_version, "csrf_token": token})
    assert unticked.status_code == 422 and "Godkänn standardvillkoren" in unticked.get_data(as_text=True)
    ticked = client.post(f"/host/listings/{listing.id}/publish",
                         data={"terms_version": season.terms_version, "accept_terms": "y", "csrf_token": token})
    assert ticked.status_code == 302
    db.session.expire_all()
    assert db.session.get(Listing, listing.id).accepted_terms_version == season.terms_version
    assert client.post(f"/host/listings/{listing.id}/unpublish", data={"csrf_token": token}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Listing, listing.id).published is False


def test_another_hosts_objects_are_404(client, login, make_host, make_listing):
    listing = make_listing()
    bed_id = listing.beds()[0].id
    intruder = make_host()
    login(intruder)
    assert client.get(f"/host/listings/{listing.id}").status_code == 404
    assert client.get(f"/host/listings/{listing.id}/edit").status_code == 404
    token = csrf_from(client.get("/host/profile"))
    assert client.post(f"/host/beds/{bed_id}/price", data={f"bed-{bed_id}-price": "1",
                                                           "csrf_token": token}).status_code == 404
    assert client.post(f"/host/listings/{listing.id}/unpublish", data={"csrf_token": token}).status_code == 404
    db.session.expire_all()
    assert db.session.get(Listing, listing.id).published is True


@pytest.mark.parametrize("path", ["/host/", "/host/profile", "/host/listings", "/host/calendar", "/host/bookings"])
def test_host_pages_refuse_other_roles_and_anonymous(client, login, make_user, path):
    assert client.get(path).headers["Location"].startswith("/login")
    login(make_user("coordinator"))
    assert client.get(path).status_code == 403


def test_calendar_shows_bookings_blocks_and_free_nights(client, login, make_listing, make_delegation):
    listing = make_listing(beds=2)
    bed_a, bed_b = (bed.id for bed in listing.beds())
    delegation = make_delegation()
    booking_service.create_booking(Actor(delegation.coordinator_id, "coordinator"), delegation_id=delegation.id,
                                   bed_ids=[bed_a], check_in=date(YEAR, 6, 20), check_out=date(YEAR, 6, 22),
                                   accept_contract=True, payment_method="invoice")
    login(listing.host)
    page = client.get("/host/calendar")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('class="cal-booked"') == 2 and "Föreningen Framtid" in html
    assert html.count('class="cal-free"') == 2 * 6 - 2
    blocked = client.post("/host/calendar/block", data={
        "block-bed_id": str(bed_b), "block-check_in": f"{YEAR}-06-23", "block-check_out": f"{YEAR}-06-25",
        "csrf_token": csrf_from(page)})
    assert blocked.status_code == 302
    assert client.get("/host/calendar").get_data(as_text=True).count('class="cal-blocked"') == 2
    taken = client.post("/host/calendar/block", data={
        "block-bed_id": str(bed_a), "block-check_in": f"{YEAR}-06-20", "block-check_out": f"{YEAR}-06-21",
        "csrf_token": csrf_from(page)})
    assert taken.status_code == 409 and "redan tagna" in taken.get_data(as_text=True)
    freed = client.post("/host/calendar/unblock", data={
        "unblock-bed_id": str(bed_b), "unblock-check_in": f"{YEAR}-06-23", "unblock-check_out": f"{YEAR}-06-25",
        "csrf_token": csrf_from(page)})
    assert freed.status_code == 302
    assert db.session.query(BedNight).filter_by(bed_id=bed_b, state="host_block").count() == 0


def test_calendar_shows_a_card_hold_until_its_time_runs_out(client, login, make_listing, make_delegation, monkeypatch):
    # The page reads the same clock the holds were made on (else a slow suite outlives the 15-minute hold).
    monkeypatch.setattr("app.web.host.bookings.utcnow", lambda: NOW)
    listing = make_listing(beds=2)
    bed_a, bed_b = (bed.id for bed in listing.beds())
    delegation = make_delegation()
    coordinator = Actor(delegation.coordinator_id, "coordinator")
    for bed_id, booked_at in ((bed_a, NOW), (bed_b, NOW - timedelta(hours=1))):  # the season holds for 15 minutes
        booking_service.create_booking(coordinator, delegation_id=delegation.id, bed_ids=[bed_id],
                                       check_in=date(YEAR, 6, 20), check_out=date(YEAR, 6, 21),
                                       accept_contract=True, payment_method="card", now=booked_at)
    login(listing.host)
    html = client.get("/host/calendar").get_data(as_text=True)
    assert html.count('class="cal-held"') == 1 and html.count('class="cal-free"') == 2 * 6 - 1


def test_host_cancellation_warns_asks_for_reason_and_is_a_breach(client, login, make_listing, make_delegation):
    listing = make_listing(beds=1)
    delegation = make_delegation()
    booking = booking_service.create_booking(
        Actor(delegation.coordinator_id, "coordinator"), delegation_id=delegation.id,
        bed_ids=[listing.beds()[0].id], check_in=date(YEAR, 6, 20), check_out=date(YEAR, 6, 21),
        accept_contract=True, payment_method="invoice")
    login(listing.host)
    assert booking.contract.number in client.get("/host/bookings").get_data(as_text=True)
    page = client.get(f"/host/bookings/{booking.id}/cancel")
    html = page.get_data(as_text=True)
    assert "avtalsbrott" in html and "prickning" in html and "krediteras i sin helhet" in html  # an unpaid invoice
    no_reason = client.post(f"/host/bookings/{booking.id}/cancel",
                            data={"reason": "", "understand": "y", "csrf_token": csrf_from(page)})
    assert no_reason.status_code == 422
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).status == "confirmed"
    done = client.post(f"/host/bookings/{booking.id}/cancel",
                       data={"reason": "Vattenskada", "understand": "y", "csrf_token": csrf_from(page)})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).status == "cancelled_by_host"
    assert db.session.get(HostProfile, listing.host_id).strikes == 1
    again = client.post(f"/host/bookings/{booking.id}/cancel",
                        data={"reason": "igen", "understand": "y", "csrf_token": csrf_from(page)})
    assert again.status_code == 409


def test_another_hosts_booking_is_404(client, login, make_listing, make_delegation, make_host):
    listing = make_listing(beds=1)
    delegation = make_delegation()
    booking = booking_service.create_booking(
        Actor(delegation.coordinator_id, "coordinator"), delegation_id=delegation.id,
        bed_ids=[listing.beds()[0].id], check_in=date(YEAR, 6, 20), check_out=date(YEAR, 6, 21),
        accept_contract=True, payment_method="invoice")
    login(make_host())
    assert client.get(f"/host/bookings/{booking.id}/cancel").status_code == 404
