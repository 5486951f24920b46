"""Issue 10: the current season. Creating next year's season changes nothing for this year's."""
from datetime import UTC, datetime, timedelta

import pytest

from app.extensions import db
from app.models import HostProfile
from app.services import listings, pricing, seasons, vetting
from app.services.base import Actor
from tests.helpers import NOW, YEAR, csrf_from


@pytest.fixture
def two_seasons(make_season, make_listing, make_user, make_delegation):
    """2027 is running (bookable), a listing is priced and published in it; then 2028 is created."""
    s2027 = make_season(year=YEAR, strike_limit=3)
    listing = make_listing(beds=2, price_ore=50000, season=s2027)
    s2028 = make_season(year=YEAR + 1, strike_limit=7, terms_version=f"{YEAR + 1}-1", terms_text=f"Villkor {YEAR + 1}.",
                        bookings_open_at=NOW + timedelta(days=300))
    coordinator = make_user("coordinator")
    return {f"s{YEAR}": s2027, f"s{YEAR + 1}": s2028, "listing": listing, "coordinator": coordinator,
            "delegation": make_delegation(coordinator)}


def test_current_season_rule_by_the_injected_clock(make_season):
    assert seasons.current_season() is None
    make_season(year=YEAR + 1)
    make_season(year=YEAR)
    at = lambda y, m, d: datetime(y, m, d, 12, tzinfo=UTC)  # noqa: E731
    assert seasons.current_season(at(YEAR - 1, 12, 1)).year == YEAR
    assert seasons.current_season(at(YEAR, 6, 25)).year == YEAR   # its last night is today
    assert seasons.current_season(at(YEAR, 6, 26)).year == (YEAR + 1)
    assert seasons.current_season(at(YEAR + 2, 1, 1)).year == (YEAR + 1)    # all over: the latest
    # Stockholm time: 22:30 UTC on 25 June is already 26 June in Visby.
    assert seasons.current_season(datetime(YEAR, 6, 25, 22, 30, tzinfo=UTC)).year == (YEAR + 1)


def test_get_seasons_marks_the_current_one(two_seasons, api_as):
    data = api_as().get("/seasons").get_json()["seasons"]
    assert [(s["year"], s["current"]) for s in data] == [(YEAR, True), (YEAR + 1, False)]


def test_next_season_changes_nothing_for_this_one_through_the_api(two_seasons, api_as, make_host):
    listing = two_seasons["listing"]
    # The listing's prices without ?year are this season's.
    data = api_as().get(f"/listings/{listing.id}").get_json()
    prices = [bed["price_ore"] for room in data["rooms"] for bed in room["beds"]]
    assert prices == [50000, 50000], data
    # A new host publishes by accepting this season's terms, not next year's.
    host = make_host()
    actor = Actor(host.id, "host")
    draft = listings.create_listing(actor, title="Nytt rum", description="", address="Strandgatan 1",
                                    postal_code="621 56", walking_minutes=5)
    room = listings.add_room(actor, draft.id, "Rum 1")
    bed = listings.add_bed(actor, room.id, "Säng 1", "single")
    pricing.set_price(actor, bed.id, YEAR, 40000)
    published = api_as(host).post(f"/listings/{draft.id}/publish",
                                  json={"accept_terms_version": two_seasons[f"s{YEAR}"].terms_version})
    assert published.status_code == 200, published.get_json()
    # The strike limit is this season's.
    assert vetting.strike_limit() == 3


def test_next_season_changes_nothing_for_this_one_on_the_pages(two_seasons, client, login):
    coordinator, listing = two_seasons["coordinator"], two_seasons["listing"]
    public = client.get(f"/listings/{listing.id}").get_data(as_text=True)
    assert "500" in public and f"{YEAR}" in public
    insyn = client.get("/insyn").get_data(as_text=True)
    assert f"{YEAR}" in insyn
    login(coordinator)
    default = client.get("/coordinator/search")
    assert default.status_code == 200 and f'value="{YEAR}-06-20"' in default.get_data(as_text=True)
    found = client.get(f"/coordinator/search?check_in={YEAR}-06-21&check_out={YEAR}-06-23&beds=1")
    assert found.status_code == 200, found.get_data(as_text=True)[:2000]
    assert "Rum i Visby" in found.get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/"))})
    host_user = db.session.get(HostProfile, listing.host_id).user
    login(host_user)
    page = client.get(f"/host/listings/{listing.id}").get_data(as_text=True)
    assert "value=\"500\"" in page or "value=\"500,00\"" in page or "value=\"500.00\"" in page, page[:3000]
