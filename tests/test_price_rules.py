"""Issue 9 and 10, price rules through every door (service, API, host page, admin season page/API), on SQLite and
PostgreSQL: a lowered cap lowers the prices above it; a host's lowering is never refused; the year-over-year
reference follows the property; only a bed on offer since booking opened is frozen."""
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, BedPrice, PriceChange, User
from app.services import listings, pricing, seasons
from app.services.base import Actor
from app.services.seasons import STOCKHOLM
from tests.helpers import NOW, YEAR, csrf_from, season_form


def _bed(host, listing=None, address="Strandgatan 1"):
    actor = Actor(host.id, "host")
    if listing is None:
        listing = listings.create_listing(actor, title="Rum", description="", address=address, postal_code="621 56",
                                          walking_minutes=5)
    room = listings.add_room(actor, listing.id, "Rum")
    return listing, listings.add_bed(actor, room.id, "Säng", "single").id


def _price(bed_id, season_id):
    db.session.expire_all()
    return db.session.scalar(select(BedPrice.price_ore).where(BedPrice.bed_id == bed_id,
                                                              BedPrice.season_id == season_id))


# --- a lowered cap lowers every price above it ------------------------------------------------------------


@pytest.fixture
def capped(make_season, make_host):
    season = make_season(price_cap_ore=90000, bookings_open_at=NOW - timedelta(days=1))
    host = make_host()
    actor = Actor(host.id, "host")
    listing, dear = _bed(host)
    _, cheap = _bed(host, listing)
    pricing.set_price(actor, dear, YEAR, 75000)
    pricing.set_price(actor, cheap, YEAR, 50000)
    listings.publish(actor, listing.id, season.terms_version)
    return season, host, dear, cheap


def _assert_capped(season, host, dear, cheap, api_as):
    assert (_price(dear, season.id), _price(cheap, season.id)) == (60000, 50000)
    log = db.session.scalars(select(PriceChange).where(PriceChange.bed_id == dear).order_by(PriceChange.id)).all()[-1]
    assert (log.actor_id, log.old_price_ore, log.requested_price_ore, log.accepted) == (None, 75000, 60000, True)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "price.capped"))
    assert entry is not None and entry.actor_id is None and str(dear) in entry.after
    host_api = api_as(host)
    lowered = host_api.put(f"/beds/{dear}/prices/{YEAR}", {"price_ore": 55000})
    assert lowered.status_code == 200, lowered.get_json()  # a host's lowering is never refused
    above = host_api.put(f"/beds/{cheap}/prices/{YEAR}", {"price_ore": 65000})
    assert above.status_code == 422 and above.get_json()["code"] == "price_above_cap"


def test_lowering_the_cap_through_the_api_lowers_prices_above_it(capped, api_as, make_admin):
    season, host, dear, cheap = capped
    admin = api_as(make_admin())
    response = admin.patch(f"/admin/seasons/{YEAR}", {"price_cap_ore": 60000})
    assert response.status_code == 200, response.get_json()
    _assert_capped(season, host, dear, cheap, api_as)


def test_lowering_the_cap_on_the_admin_page_lowers_prices_above_it(capped, api_as, client, admin_login):  # noqa: F811
    season, host, dear, cheap = capped
    admin_login()
    page = client.get(f"/admin/seasons/{YEAR}/edit")
    opens = season.bookings_open_at.astimezone(STOCKHOLM)  # the form takes local time
    data = {**season_form(name=season.name, first_night=f"{YEAR}-06-20", last_night=f"{YEAR}-06-25",
                           bookings_open_on=opens.date().isoformat(), bookings_open_time=opens.strftime("%H:%M"),
                           price_cap="600", free_cancellation_until=season.free_cancellation_until.isoformat(),
                           terms_version=season.terms_version)}
    del data["year"], data["terms_text"]
    response = client.post(f"/admin/seasons/{YEAR}/edit", data={**data, "csrf_token": csrf_from(page)})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    _assert_capped(season, host, dear, cheap, api_as)


def test_raising_the_cap_changes_no_price(capped, admin_actor):
    season, _host, dear, cheap = capped
    seasons.update_season(admin_actor, YEAR, {"price_cap_ore": 95000})
    assert (_price(dear, season.id), _price(cheap, season.id)) == (75000, 50000)
    assert db.session.scalar(select(AuditEntry.id).where(AuditEntry.action == "price.capped")) is None


# --- a host's lowering is never refused -------------------------------------------------------------------


def test_a_lowering_is_never_refused_even_above_a_later_reference(make_season, make_host, api_as):
    # Two seasons still ahead; the next one was priced first, then this one lower: the next one's price now
    # lies above its year-over-year limit, and lowering it must still be accepted.
    make_season(year=YEAR, bookings_open_at=NOW + timedelta(days=10))
    make_season(year=YEAR + 1, bookings_open_at=NOW + timedelta(days=20))
    host = make_host()
    _, bed_id = _bed(host)
    api = api_as(host)
    assert api.put(f"/beds/{bed_id}/prices/{YEAR + 1}", {"price_ore": 90000}).status_code == 200
    assert api.put(f"/beds/{bed_id}/prices/{YEAR}", {"price_ore": 40000}).status_code == 200
    lowered = api.put(f"/beds/{bed_id}/prices/{YEAR + 1}", {"price_ore": 80000})
    assert lowered.status_code == 200, lowered.get_json()


# --- the year-over-year reference follows the property ----------------------------------------------------


@pytest.fixture
def last_year(make_season, make_host):
    """Last season (over) priced a bed of a listing at 600 kr; this season has not opened yet."""
    before = datetime(YEAR - 2, 1, 10, tzinfo=UTC)
    previous = make_season(year=YEAR - 2, bookings_open_at=before + timedelta(days=5))
    make_season(year=YEAR, bookings_open_at=NOW + timedelta(days=30))
    host = make_host()
    listing, old_bed = _bed(host, address="Strandgatan 1")
    _, cheap_bed = _bed(host, listing)
    pricing.set_price(Actor(host.id, "host"), old_bed, YEAR - 2, 60000, now=before)
    pricing.set_price(Actor(host.id, "host"), cheap_bed, YEAR - 2, 40000, now=before)
    assert previous.year == YEAR - 2
    return host, listing, old_bed, cheap_bed


def test_a_new_bed_in_the_same_listing_cannot_escape_the_limit(last_year, api_as):
    host, listing, _old, _cheap = last_year
    _, new_bed = _bed(host, listing)
    response = api_as(host).put(f"/beds/{new_bed}/prices/{YEAR}", {"price_ore": 66001})
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["code"] == "increase_above_limit" and response.get_json()["max_allowed_ore"] == 66000
    assert api_as(host).put(f"/beds/{new_bed}/prices/{YEAR}", {"price_ore": 66000}).status_code == 200


def test_a_bed_keeps_its_own_reference_first(last_year, api_as):
    host, _listing, _old, cheap = last_year
    response = api_as(host).put(f"/beds/{cheap}/prices/{YEAR}", {"price_ore": 44001})
    assert response.status_code == 422 and response.get_json()["max_allowed_ore"] == 44000


def test_a_new_listing_at_the_same_address_cannot_escape_the_limit(last_year, api_as):
    host, _listing, _old, _cheap = last_year
    _, new_bed = _bed(host, address="  STRANDGATAN   1 ")
    response = api_as(host).put(f"/beds/{new_bed}/prices/{YEAR}", {"price_ore": 90000})
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["code"] == "increase_above_limit" and response.get_json()["max_allowed_ore"] == 66000


def test_the_host_page_refuses_a_new_listing_at_the_same_address_above_the_limit(last_year, client, login):
    host, _listing, _old, _cheap = last_year
    listing, new_bed = _bed(host, address="Strandgatan 1")
    login(db.session.get(User, host.id))
    page = client.get(f"/host/listings/{listing.id}")
    response = client.post(f"/host/beds/{new_bed}/price", data={f"bed-{new_bed}-price": "800",
                                                                "csrf_token": csrf_from(page)})
    assert response.status_code == 422
    assert "Högsta tillåtna pris: 660 kr per natt." in response.get_data(as_text=True)
    assert db.session.scalar(select(BedPrice.id).where(BedPrice.bed_id == new_bed)) is None


def test_another_address_or_another_host_is_not_limited(last_year, make_host, api_as):
    host, *_ = last_year
    _, elsewhere = _bed(host, address="Hamngatan 3")
    assert api_as(host).put(f"/beds/{elsewhere}/prices/{YEAR}", {"price_ore": 90000}).status_code == 200
    neighbour = make_host()
    _, theirs = _bed(neighbour, address="Strandgatan 1")
    assert api_as(neighbour).put(f"/beds/{theirs}/prices/{YEAR}", {"price_ore": 90000}).status_code == 200


# --- only a bed on offer since opening is frozen ----------------------------------------------------------


def test_a_never_offered_bed_may_be_raised_after_opening(make_season, make_host, api_as):
    make_season(bookings_open_at=NOW - timedelta(days=1))
    host = make_host(approved=False)  # an unpublished draft of an unapproved host
    _, bed_id = _bed(host)
    api = api_as(host)
    assert api.put(f"/beds/{bed_id}/prices/{YEAR}", {"price_ore": 5000}).status_code == 200  # mistyped
    raised = api.put(f"/beds/{bed_id}/prices/{YEAR}", {"price_ore": 50000})
    assert raised.status_code == 200, raised.get_json()
    above = api.put(f"/beds/{bed_id}/prices/{YEAR}", {"price_ore": 90001})
    assert above.status_code == 422 and above.get_json()["code"] == "price_above_cap"


def test_a_bed_on_offer_since_opening_stays_frozen_after_unpublishing(make_season, make_host, api_as):
    season = make_season(bookings_open_at=NOW - timedelta(days=1))
    host = make_host()
    listing, bed_id = _bed(host)
    api = api_as(host)
    assert api.put(f"/beds/{bed_id}/prices/{YEAR}", {"price_ore": 50000}).status_code == 200
    assert api.post(f"/listings/{listing.id}/publish", {"accept_terms_version": season.terms_version}).status_code \
        == 200
    assert api.post(f"/listings/{listing.id}/unpublish").status_code == 200
    raised = api.put(f"/beds/{bed_id}/prices/{YEAR}", {"price_ore": 50100})
    assert raised.status_code == 409 and raised.get_json()["code"] == "price_frozen"
    assert raised.get_json()["max_allowed_ore"] == 50000


def test_a_listing_taken_off_the_market_before_opening_was_never_on_offer(make_season, make_host):
    opens = NOW + timedelta(days=5)
    season = make_season(bookings_open_at=opens)
    host = make_host()
    actor = Actor(host.id, "host")
    listing, bed_id = _bed(host)
    pricing.set_price(actor, bed_id, YEAR, 50000)
    listings.publish(actor, listing.id, season.terms_version)
    listings.unpublish(actor, listing.id)
    pricing.set_price(actor, bed_id, YEAR, 60000, now=opens + timedelta(days=1))  # after opening: allowed
    assert _price(bed_id, season.id) == 60000


def test_the_host_page_lets_a_never_offered_bed_be_raised_and_says_opened(make_season, make_host, client, login):
    make_season(bookings_open_at=NOW - timedelta(days=1))
    host = make_host(approved=False)
    listing, bed_id = _bed(host)
    pricing.set_price(Actor(host.id, "host"), bed_id, YEAR, 5000)
    login(host)
    page = client.get(f"/host/listings/{listing.id}")
    html = page.get_data(as_text=True)
    assert "Bokningen öppnade" in html and "Bokningen öppnar" not in html
    response = client.post(f"/host/beds/{bed_id}/price", data={f"bed-{bed_id}-price": "500",
                                                               "csrf_token": csrf_from(page)})
    assert response.status_code == 302, response.get_data(as_text=True)[:1500]


def test_the_host_page_says_opens_for_an_opening_ahead(make_season, make_host, client, login):
    make_season(bookings_open_at=NOW + timedelta(days=3))
    host = make_host()
    listing, _bed_id = _bed(host)
    login(host)
    html = client.get(f"/host/listings/{listing.id}").get_data(as_text=True)
    assert "Bokningen öppnar" in html and "Bokningen öppnade" not in html

