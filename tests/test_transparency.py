"""The public figures: GET /api/v1/transparency (API.md's shape) and the /insyn page with its SVG chart."""
import re

import pytest

from app.services import cancellations, flags, pricing
from app.services.base import Actor
from app.web.public.transparency import price_chart
from tests.helpers import YEAR

API_KEYS = {"year", "vetted_hosts", "beds", "booked_share", "median_price_ore", "p90_price_ore", "previous_year",
            "host_cancellations", "flags_upheld"}


@pytest.fixture
def two_seasons(make_season, make_listing, make_user, make_delegation, admin_actor, make_booking):
    """Seasons YEAR and YEAR + 1; four beds priced 500/500/800/800 kr in YEAR and 550/550/800/800 kr in YEAR + 1."""
    season = make_season(year=YEAR)
    cheap = make_listing(beds=2, price_ore=50000, season=season)
    dear = make_listing(beds=2, price_ore=80000, season=season)
    make_season(year=YEAR + 1)
    for listing, price in ((cheap, 55000), (dear, 80000)):
        for bed in listing.beds():
            pricing.set_price(Actor(listing.host_id, "host"), bed.id, YEAR + 1, price)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    actor = Actor(coordinator.id, "coordinator")

    def book(bed_ids):
        return make_booking(delegation=delegation, bed_ids=bed_ids)

    book([b.id for b in cheap.beds()])  # 2 beds x 2 nights booked
    broken = book([dear.beds()[0].id])
    cancellations.cancel_by_host(Actor(dear.host_id, "host"), broken.id, "Dubbelbokat")
    flag = flags.create_flag(actor, host_id=dear.host_id, category="cancellation", description="Avbokade.",
                             booking_id=broken.id)
    flags.resolve_flag(admin_actor, flag.id, "upheld", "Avtalsbrott enligt villkorens regel 7.")
    return {"cheap": cheap, "dear": dear}


def test_api_shape_and_figures(two_seasons, api_as):
    response = api_as().get(f"/transparency?year={YEAR}")
    assert response.status_code == 200
    data = response.get_json()
    assert API_KEYS <= set(data)
    assert data["year"] == YEAR and data["vetted_hosts"] == 2 and data["beds"] == 4
    assert data["booked_share"] == round(4 / (4 * 6), 4)
    assert (data["median_price_ore"], data["p90_price_ore"]) == (50000, 80000)
    assert data["previous_year"] is None
    # Both the system flag from the host cancellation and the coordinator's flag are about a 2027 booking.
    assert data["host_cancellations"] == 1 and data["flags_upheld"] == 1

    # Without ?year the figures are the current season's, never simply the newest.
    assert api_as().get("/transparency").get_json()["year"] == YEAR
    latest = api_as().get(f"/transparency?year={YEAR + 1}").get_json()
    assert latest["year"] == (YEAR + 1) and (latest["median_price_ore"], latest["p90_price_ore"]) == (55000, 80000)
    assert latest["previous_year"]["median_price_ore"] == 50000 and latest["previous_year"]["p90_price_ore"] == 80000
    assert latest["host_cancellations"] == 0 and latest["flags_upheld"] == 0 and latest["booked_share"] == 0
    assert api_as().get("/transparency?year=1999").status_code == 404
    assert api_as().get("/transparency?year=x").status_code == 422


def test_insyn_page_has_an_accessible_svg_chart_and_a_table(two_seasons, client):
    page = client.get(f"/insyn?year={YEAR + 1}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    svg = re.search(r"<svg[^>]*>(.*?)</svg>", html, re.S)
    assert svg and 'role="img"' in svg.group(0) and "aria-labelledby" in svg.group(0)
    assert "<title" in svg.group(1) and "<desc" in svg.group(1)
    assert svg.group(1).count("<rect") == 4  # median and p90, 2027 beside 2028
    assert 'class="cap-line"' in svg.group(1)
    assert "550 kr" in html and "Pristak 900 kr" in html and "<table" in html and "+10,0 %" in html
    assert "style=" not in html and "<script" not in html.split("</footer>")[0]
    assert client.get("/insyn?year=1999").status_code == 404
    assert client.get("/insyn?year=" + "9" * 20).status_code == 200  # not a year: the current season, not a 500
    # Without ?year /insyn shows the current season (2027 runs now), not the newest one.
    assert "2027" in client.get("/insyn").get_data(as_text=True).split("<h1")[1][:200]
    english = client.get("/insyn?year=2028&lang=en").get_data(as_text=True)
    assert "Price per bed and night" in english and "SEK 550" in english and "+10.0 %" in english
    assert '/insyn"' in client.get("/").get_data(as_text=True)  # linked from every page's footer


def test_insyn_without_any_season(client, app):
    page = client.get("/insyn")
    assert page.status_code == 200 and "ingen säsong" in page.get_data(as_text=True)


def test_chart_scales_bars_to_the_cap():
    figures = {"year": YEAR + 1, "median_price_ore": 45000, "p90_price_ore": 90000, "price_cap_ore": 90000,
               "previous_year": None}
    chart = price_chart(figures)
    assert len(chart.bars) == 2
    median, p90 = chart.bars
    assert p90.height == pytest.approx(2 * median.height)
    assert chart.cap_y == pytest.approx(p90.y)  # a price at the cap reaches the cap line
    assert chart.ticks[0] == (chart.baseline, 0)


def test_rehousings_and_prices_at_the_cap(make_season, make_listing, make_booking, api_as, client):
    """The season's rehousings (offered, accepted; one per breach) and the share of prices set exactly at the cap."""
    from app.services import rehousing
    season = make_season(year=YEAR)  # cap 900 kr
    breaching = make_listing(beds=2, price_ore=50000, walking_minutes=10, season=season)
    make_listing(beds=2, price_ore=90000, walking_minutes=12, season=season)  # at the cap
    make_listing(beds=4, price_ore=60000, walking_minutes=11, season=season)
    first = make_booking(bed_ids=[breaching.beds()[0].id])
    second = make_booking(bed_ids=[breaching.beds()[1].id])
    host = Actor(breaching.host_id, "host")
    cancellations.cancel_by_host(host, first.id, "Vattenskada")
    cancellations.cancel_by_host(host, second.id, "Vattenskada")
    offer = rehousing.current_offer(first.id)
    rehousing.accept(Actor(first.coordinator_id, "coordinator"), offer.booking_ids[0], accept_contract=True)
    data = api_as().get(f"/transparency?year={YEAR}").get_json()
    print("transparency:", {k: data[k] for k in ("rehousings", "prices_at_cap_share")})
    assert data["rehousings"] == {"offered": 2, "accepted": 1}
    assert data["prices_at_cap_share"] == round(2 / 8, 4)  # 2 of 8 priced beds at 900 kr
    page = client.get(f"/insyn?year={YEAR}").get_data(as_text=True)
    assert "1 / 2" in page and "25 %" in page
