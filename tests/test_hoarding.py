"""Issue 9, hoarding: one organisation number may hold only so many bed-nights and unpaid card holds.

Through the API, the coordinator's booking and delegation pages, the admin season form and the waiting
list's offers, on SQLite and PostgreSQL. The HTTP race is in test_hoarding_race.py.
"""
from __future__ import annotations

from datetime import date, timedelta

import pyotp
import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import BedNight, Booking, User, WaitlistEntry
from app.services import booking as booking_service
from app.services import cancellations, jobs, waitlist
from app.services.base import Actor
from tests.helpers import NOW, YEAR, csrf_from, review_data, review_url, signed_in, valid_organisation_number

FIRST = date(YEAR, 6, 20)


def beds(listing) -> list[int]:
    return [bed.id for bed in listing.beds()]


def book_body(delegation, bed_ids, check_in=FIRST, nights=1, method="invoice") -> dict:
    return {"delegation_id": delegation.id, "bed_ids": bed_ids, "check_in": check_in.isoformat(),
            "check_out": (check_in + timedelta(days=nights)).isoformat(), "accept_contract": True,
            "payment_method": method}


def refusal(response, kind: str, limit: int, held: int):
    body = response.get_json()
    assert response.status_code == 422, body
    assert (body["code"], body["kind"], body["limit"], body["held"]) == ("organisation_limit", kind, limit, held), body
    return body


def held_bed_nights(number: str) -> int:
    from app.models import Delegation
    return db.session.scalar(select(func.count(BedNight.id)).join(Booking, Booking.id == BedNight.booking_id)
                             .join(Delegation, Delegation.id == Booking.delegation_id)
                             .where(Delegation.organisation_number == number,
                                    BedNight.state.in_(("held", "booked"))))


# ---------------------------------------------------------------------------------------------
# Bed-night limit
# ---------------------------------------------------------------------------------------------


def test_api_refuses_bed_nights_above_the_seasons_limit(make_season, make_listing, make_user, make_delegation,
                                                        api_as):
    season = make_season(max_beds_per_organisation=10)
    listing = make_listing(beds=5, season=season)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    api = api_as(coordinator)
    assert api.post("/bookings", book_body(delegation, beds(listing), nights=2)).status_code == 201  # 10 of 10
    other = make_listing(beds=1, season=season)
    body = refusal(api.post("/bookings", book_body(delegation, beds(other))), "bed_nights", 10, 10)
    assert "Boka färre bäddar" in body["detail"] and body["requested"] == 1
    assert held_bed_nights(delegation.organisation_number) == 10


def test_null_limit_means_twenty_times_the_seasons_nights(make_season, make_listing, make_user, make_delegation,
                                                          api_as, client):
    season = make_season(last_night=FIRST + timedelta(days=1))  # two nights: 40 bed-nights per organisation
    shown = [s for s in client.get("/api/v1/seasons").get_json()["seasons"] if s["year"] == YEAR][0]
    assert (shown["max_beds_per_organisation"], shown["max_open_holds"]) == (None, 3)
    listing = make_listing(beds=20, season=season)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    api = api_as(coordinator)
    assert api.post("/bookings", book_body(delegation, beds(listing), nights=2)).status_code == 201  # 40
    other = make_listing(beds=1, season=season)
    refusal(api.post("/bookings", book_body(delegation, beds(other))), "bed_nights", 40, 40)


def test_delegations_of_one_organisation_number_count_together(make_season, make_listing, make_user,
                                                                make_delegation, api_as):
    season = make_season(max_beds_per_organisation=6)
    listing = make_listing(beds=6, season=season)
    first, second = make_user("coordinator"), make_user("coordinator")
    number = valid_organisation_number(9001)
    mine = make_delegation(first, organisation_number=number)
    theirs = make_delegation(second, organisation_number=number.replace("-", ""))  # stored normalised
    assert theirs.organisation_number == number
    assert api_as(first).post("/bookings", book_body(mine, beds(listing)[:4])).status_code == 201
    refusal(api_as(second).post("/bookings", book_body(theirs, beds(listing)[4:6], nights=2)), "bed_nights", 6, 4)
    # Another organisation is not held back by this one.
    other = make_delegation(second)
    assert api_as(second).post("/bookings", book_body(other, beds(listing)[4:6], nights=2)).status_code == 201


def test_host_cancelled_bed_nights_do_not_count(make_season, make_listing, make_user, make_delegation, api_as):
    season = make_season(max_beds_per_organisation=4)
    listing = make_listing(beds=4, season=season)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    api = api_as(coordinator)
    created = api.post("/bookings", book_body(delegation, beds(listing)))
    assert created.status_code == 201
    host = db.session.get(User, listing.host_id)
    cancellations.cancel_by_host(Actor.of(host), created.get_json()["id"], "vattenskada")
    other = make_listing(beds=4, season=season)
    assert api.post("/bookings", book_body(delegation, beds(other))).status_code == 201  # 4 again: allowed
    third = make_listing(beds=1, season=season)
    refusal(api.post("/bookings", book_body(delegation, beds(third))), "bed_nights", 4, 4)


def test_coordinator_booking_page_shows_the_limit(app, make_season, make_listing, make_user, make_delegation):
    season = make_season(max_beds_per_organisation=2)
    listing = make_listing(beds=3, season=season)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    browser = signed_in(app, coordinator)
    chosen = beds(listing)
    page = browser.get(review_url(chosen, FIRST, FIRST + timedelta(days=1)))
    response = browser.post("/coordinator/review", data={
        **review_data(delegation, chosen, FIRST, FIRST + timedelta(days=1)), "csrf_token": csrf_from(page)})
    html = response.get_data(as_text=True)
    assert response.status_code == 422, html
    assert "har redan 0 bokade eller reserverade bäddnätter" in html and "högst 2" in html
    assert db.session.scalar(select(func.count(Booking.id))) == 0


# ---------------------------------------------------------------------------------------------
# Unpaid card holds
# ---------------------------------------------------------------------------------------------


def test_api_refuses_a_card_hold_above_max_open_holds(make_season, make_listing, make_user, make_delegation,
                                                      api_as):
    season = make_season()  # max_open_holds defaults to 3
    listing = make_listing(beds=5, season=season)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    api = api_as(coordinator)
    for bed_id in beds(listing)[:3]:
        assert api.post("/bookings", book_body(delegation, [bed_id], method="card")).status_code == 201
    body = refusal(api.post("/bookings", book_body(delegation, [beds(listing)[3]], method="card")), "holds", 3, 3)
    assert "obetalda kortreservationer" in body["detail"]
    # An invoice booking is no hold.
    assert api.post("/bookings", book_body(delegation, [beds(listing)[4]])).status_code == 201


def test_a_lapsed_hold_counts_for_hold_minutes_after_it_lapsed(make_season, make_listing, make_user,
                                                               make_delegation, api_as, monkeypatch):
    season = make_season(max_open_holds=1, hold_minutes=15)
    listing = make_listing(beds=3, season=season)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    api = api_as(coordinator)
    clock = {"now": NOW}
    monkeypatch.setattr("app.services.base.utcnow", lambda: clock["now"])
    bed_a, bed_b, bed_c = beds(listing)
    assert api.post("/bookings", book_body(delegation, [bed_a], method="card")).status_code == 201
    # Lapsed (15 min) but no job has run yet: still one hold.
    clock["now"] = NOW + timedelta(minutes=16)
    refusal(api.post("/bookings", book_body(delegation, [bed_b], method="card")), "holds", 1, 1)
    # The job expires it: it keeps counting until 15 minutes after it lapsed...
    assert jobs.expire_holds(now=clock["now"])
    clock["now"] = NOW + timedelta(minutes=29)
    refusal(api.post("/bookings", book_body(delegation, [bed_a], method="card")), "holds", 1, 1)
    # ... and then no longer.
    clock["now"] = NOW + timedelta(minutes=31)
    assert api.post("/bookings", book_body(delegation, [bed_c], method="card")).status_code == 201


# ---------------------------------------------------------------------------------------------
# Organisation numbers
# ---------------------------------------------------------------------------------------------

INVALID = ["000000-0000", "802000-1234", "551399-0001", "8020001", "abcdef-ghij", "121212-1213",
           "19121312-1212"]


@pytest.mark.parametrize("number", INVALID)
def test_api_refuses_an_invalid_organisation_number(make_user, api_as, number):
    response = api_as(make_user("coordinator")).post("/delegations",
                                                     {"name": "Föreningen", "organisation_number": number})
    body = response.get_json()
    assert response.status_code == 422 and body["code"] == "invalid", body
    assert "kontrollsiffra" in body["errors"]["organisation_number"][0]


@pytest.mark.parametrize("given, stored", [
    ("5560360793", "556036-0793"),       # organisation number without the dash
    ("802000-1239", "802000-1239"),
    ("121212-1212", "121212-1212"),      # a sole trader's personal identity number
    ("19121212-1212", "121212-1212"),    # ... given with its century
])
def test_api_accepts_and_normalises_valid_numbers(make_user, api_as, given, stored):
    response = api_as(make_user("coordinator")).post("/delegations",
                                                     {"name": "Föreningen", "organisation_number": given})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["organisation_number"] == stored


def test_delegation_page_refuses_an_invalid_number(app, make_user):
    coordinator = make_user("coordinator")
    browser = signed_in(app, coordinator)
    page = browser.get("/coordinator/delegations/new")
    response = browser.post("/coordinator/delegations/new", data={
        "name": "Föreningen", "organisation_number": "000000-0000", "csrf_token": csrf_from(page)})
    assert response.status_code == 422
    assert "kontrollsiffra" in response.get_data(as_text=True)
    from app.models import Delegation
    assert db.session.scalar(select(func.count(Delegation.id))) == 0


# ---------------------------------------------------------------------------------------------
# Waiting-list offers
# ---------------------------------------------------------------------------------------------


def test_an_offer_skips_an_organisation_at_its_limit_and_counts_when_made(make_season, make_listing, make_user,
                                                                          make_delegation):
    season = make_season(max_beds_per_organisation=3, bookings_open_at=NOW - timedelta(days=1))
    listing = make_listing(beds=2, season=season)
    owner = make_user("coordinator")
    holder = make_delegation(owner)
    first = booking_service.create_booking(Actor.of(owner), delegation_id=holder.id, bed_ids=beds(listing),
                                           check_in=FIRST, check_out=FIRST + timedelta(days=1),
                                           accept_contract=True, payment_method="invoice")
    # Two organisations wait for 2 beds that night; the older one already holds 2 of its 3 elsewhere.
    full_user, next_user = make_user("coordinator"), make_user("coordinator")
    full, waiting = make_delegation(full_user), make_delegation(next_user)
    elsewhere = make_listing(beds=2, season=season)
    booking_service.create_booking(Actor.of(full_user), delegation_id=full.id, bed_ids=beds(elsewhere),
                                   check_in=FIRST, check_out=FIRST + timedelta(days=1),
                                   accept_contract=True, payment_method="invoice")
    older = waitlist.join(Actor.of(full_user), delegation_id=full.id, year=YEAR, check_in=FIRST,
                          check_out=FIRST + timedelta(days=1), beds=2)
    younger = waitlist.join(Actor.of(next_user), delegation_id=waiting.id, year=YEAR, check_in=FIRST,
                            check_out=FIRST + timedelta(days=1), beds=2)
    cancellations.cancel_by_guest(Actor.of(owner), first.id)
    assert db.session.get(WaitlistEntry, older.id).status == "waiting"      # 2 + 2 > 3: skipped
    offered = db.session.get(WaitlistEntry, younger.id)
    assert offered.status == "offered"
    # The unaccepted offer holds 2 of the younger organisation's 3 bed-nights.
    third = make_listing(beds=2, season=season)
    with pytest.raises(Exception) as refused:
        booking_service.create_booking(Actor.of(next_user), delegation_id=waiting.id, bed_ids=beds(third),
                                       check_in=FIRST + timedelta(days=3), check_out=FIRST + timedelta(days=4),
                                       accept_contract=True, payment_method="invoice")
    assert getattr(refused.value, "code", None) == "organisation_limit"
    assert refused.value.facts == {"kind": "bed_nights", "limit": 3, "held": 2, "requested": 2}


# ---------------------------------------------------------------------------------------------
# The season settings through every door
# ---------------------------------------------------------------------------------------------


def test_api_sets_and_clears_the_limits(make_season, make_admin, api_as, client):
    make_season()
    admin = api_as(make_admin())
    changed = admin.patch(f"/admin/seasons/{YEAR}", {"max_beds_per_organisation": 50, "max_open_holds": 2})
    assert changed.status_code == 200, changed.get_json()
    assert (changed.get_json()["max_beds_per_organisation"], changed.get_json()["max_open_holds"]) == (50, 2)
    kept = admin.patch(f"/admin/seasons/{YEAR}", {"name": "Almedalen"}).get_json()
    assert (kept["max_beds_per_organisation"], kept["max_open_holds"]) == (50, 2)
    cleared = admin.patch(f"/admin/seasons/{YEAR}", {"max_beds_per_organisation": None}).get_json()
    assert (cleared["max_beds_per_organisation"], cleared["max_open_holds"]) == (None, 2)
    for bad in ({"max_open_holds": 0}, {"max_beds_per_organisation": 0}, {"max_open_holds": "3"}):
        response = admin.patch(f"/admin/seasons/{YEAR}", bad)
        assert response.status_code == 422 and response.get_json()["code"] == "invalid", (bad, response.get_json())
    # max_open_holds has no null: a null leaves it as it is.
    assert admin.patch(f"/admin/seasons/{YEAR}", {"max_open_holds": None}).status_code == 200
    assert client.get("/api/v1/seasons").get_json()["seasons"][0]["max_open_holds"] == 2
    created = admin.post("/admin/seasons", {
        "year": YEAR + 1, "name": "Nästa", "first_night": f"{YEAR + 1}-06-20", "last_night": f"{YEAR + 1}-06-25",
        "bookings_open_at": f"{YEAR + 1}-02-01T09:00:00+01:00", "price_cap_ore": 90000, "max_increase_pct": 10,
        "strike_limit": 3, "hold_minutes": 15, "free_cancellation_until": f"{YEAR + 1}-04-20",
        "late_cancellation_refund_pct": 50, "max_beds_per_organisation": 30})
    assert created.status_code == 201, created.get_json()
    assert (created.get_json()["max_beds_per_organisation"], created.get_json()["max_open_holds"]) == (30, 3)
    document = client.get("/api/v1/openapi.json").get_json()
    schema = document["paths"]["/admin/seasons"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"max_beds_per_organisation", "max_open_holds"} <= set(schema["properties"])


def test_admin_season_form_sets_and_clears_the_limits(client, login, make_admin, make_season):
    from app.services.seasons import season_for_year
    make_season(max_beds_per_organisation=40, max_open_holds=5)
    secret = pyotp.random_base32()
    assert login(make_admin(totp_secret=secret), otp=pyotp.TOTP(secret).now()).status_code == 302
    page = client.get(f"/admin/seasons/{YEAR}/edit")
    html = page.get_data(as_text=True)
    assert 'name="max_beds_per_organisation"' in html and 'value="40"' in html and 'value="5"' in html
    data = {"name": f"Almedalsveckan {YEAR}", "first_night": f"{YEAR}-06-20", "last_night": f"{YEAR}-06-25",
            "bookings_open_on": f"{YEAR}-02-01", "bookings_open_time": "09:00", "price_cap": "900",
            "max_increase_pct": "10", "strike_limit": "3", "hold_minutes": "15",
            "free_cancellation_until": f"{YEAR}-04-20", "late_cancellation_refund_pct": "50",
            "terms_version": "", "terms_text": "", "max_beds_per_organisation": "", "max_open_holds": "2"}
    response = client.post(f"/admin/seasons/{YEAR}/edit", data={**data, "csrf_token": csrf_from(page)})
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.expire_all()
    season = season_for_year(YEAR)
    assert (season.max_beds_per_organisation, season.max_open_holds) == (None, 2)
    refused = client.post(f"/admin/seasons/{YEAR}/edit", data={**data, "max_open_holds": "0",
                                                               "csrf_token": csrf_from(page)})
    assert refused.status_code == 422 and "obetalda kortreservationer" in refused.get_data(as_text=True)
