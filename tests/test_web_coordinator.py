"""Coordinator pages: the whole booking journey through real forms with CSRF, and who may see what."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from flask import url_for
from sqlalchemy import select

from app.extensions import db
from app.models import BedNight, Booking, Delegation, Flag
from tests.helpers import CHECK_IN, CHECK_OUT, NOW, YEAR, csrf_from, review_data, review_url, signed_in


def post_form(browser, page_url, action_url, data):
    """Open the page that holds the form, then submit it with that page's CSRF token."""
    page = browser.get(page_url)
    assert page.status_code == 200, page.get_data(as_text=True)
    return browser.post(action_url, data={**data, "csrf_token": csrf_from(page)})


def bed_ids_of(listing):
    return [bed.id for room in listing.rooms for bed in room.beds]


def test_journey_delegation_search_review_book(app, make_user, make_listing):
    listing = make_listing(beds=3, price_ore=50000, title="Gästhem vid Almedalen")
    make_listing(beds=2, price_ore=40000, title="Billigare stuga", walking_minutes=45)
    coordinator = make_user("coordinator")
    browser = signed_in(app, coordinator)

    created = post_form(browser, "/coordinator/delegations/new", "/coordinator/delegations/new",
                        {"name": "Föreningen Framtid", "organisation_number": "8020001239"})
    assert created.status_code == 302
    delegation = db.session.scalar(select(Delegation).where(Delegation.coordinator_id == coordinator.id))
    assert delegation.organisation_number == "802000-1239"
    assert created.location.endswith(f"/coordinator/delegations/{delegation.id}")

    added = post_form(browser, created.location, f"/coordinator/delegations/{delegation.id}/members",
                      {"name": "Åsa Öberg", "email": "asa@example.se"})
    assert added.status_code == 302
    page = browser.get(added.location).get_data(as_text=True)
    assert "Åsa Öberg" in page
    assert f"/calendar/delegation/{delegation.calendar_token}.ics" in page
    assert f"/coordinator/delegations/{delegation.id}/rooming.csv" in page

    found = browser.get(f"/coordinator/search?check_in={YEAR}-06-20&check_out={YEAR}-06-22&beds=2"
                        "&max_walking_minutes=30&max_price_kr=600")
    html = found.get_data(as_text=True)
    assert found.status_code == 200
    assert "Gästhem vid Almedalen" in html and "Billigare stuga" not in html  # 45 minutes is too far
    checked = [int(b) for b in re.findall(r'name="bed_ids" value="(\d+)" checked', html)]
    assert checked == bed_ids_of(listing)[:2]  # the two cheapest of three, preselected

    review = browser.get(review_url(checked))
    html = review.get_data(as_text=True)
    assert review.status_code == 200
    assert f"{listing.host.name} AB" in html                   # the host's legal name
    assert "Föreningen Framtid (802000-1239)" in html           # the delegation to choose
    assert html.count('class="num">500 kr</td>') == 4      # 2 beds x 2 nights, each priced
    assert "2\u00a0000 kr" in html                         # the total
    assert "50 %" in html and "Sängplats standardvillkor" in html
    assert "avtalsbrott" in html

    booked = browser.post("/coordinator/review", data={**review_data(delegation, checked),
                                                       "csrf_token": csrf_from(review)})
    assert booked.status_code == 302, booked.get_data(as_text=True)
    booking = db.session.scalar(select(Booking).where(Booking.coordinator_id == coordinator.id))
    assert booked.location.endswith(f"/coordinator/bookings/{booking.id}")
    assert booking.status == "confirmed" and booking.total_ore == 200000
    page = browser.get(booked.location).get_data(as_text=True)
    assert booking.contract.number in page and booking.contract.sha256 in page
    assert booking.invoice_number in page
    assert f"/coordinator/contracts/{booking.contract.id}.pdf" in page
    assert "Gästhem vid Almedalen" in browser.get("/coordinator/bookings").get_data(as_text=True)
    assert f'href="/coordinator/bookings/{booking.id}"' in browser.get("/coordinator/").get_data(as_text=True)


def test_booking_without_accepting_the_contract_is_refused(app, make_user, make_listing, make_delegation):
    listing = make_listing(beds=2)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    browser = signed_in(app, coordinator)
    beds = bed_ids_of(listing)
    review = browser.get(review_url(beds))
    data = review_data(delegation, beds)
    del data["accept_contract"]
    response = browser.post("/coordinator/review", data={**data, "csrf_token": csrf_from(review)})
    assert response.status_code == 422
    assert "Kryssa i att du accepterar avtalet" in response.get_data(as_text=True)
    assert db.session.scalar(select(Booking.id)) is None


def test_post_without_csrf_token_is_refused(app, make_user, make_listing, make_delegation):
    listing = make_listing(beds=1)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    browser = signed_in(app, coordinator)
    response = browser.post("/coordinator/review", data=review_data(delegation, bed_ids_of(listing)))
    assert response.status_code == 400
    assert db.session.scalar(select(Booking.id)) is None


def test_second_coordinator_gets_the_taken_bed_nights(app, make_user, make_listing, make_delegation, make_booking):
    listing = make_listing(beds=2)
    first_bed, second_bed = bed_ids_of(listing)
    winner = make_user("coordinator")
    make_booking(coordinator=winner, bed_ids=[first_bed],
                 check_in=CHECK_IN, check_out=CHECK_OUT)  # nights 20 and 21

    loser = make_user("coordinator")
    delegation = make_delegation(loser)
    browser = signed_in(app, loser)
    stay = (date(YEAR, 6, 21), date(YEAR, 6, 23))  # nights 21 and 22: only bed 1 on the 21st is taken
    review = browser.get(review_url([first_bed, second_bed], *stay))
    response = browser.post("/coordinator/review", data={
        **review_data(delegation, [first_bed, second_bed], *stay), "csrf_token": csrf_from(review)})
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    taken = re.findall(r'<li class="taken"><span class="bed">([^<]*)</span>[^<]*<time datetime="([\d-]+)"', html)
    assert taken == [("Rum 1 / Säng 1", f"{YEAR}-06-21")]
    assert "Tillbaka till sökningen" in html and "/coordinator/search?" in html
    assert db.session.scalar(select(Booking.id).where(Booking.coordinator_id == loser.id)) is None


def test_card_booking_goes_to_payment_when_there_is_a_payment_page(app, make_user, make_listing,
                                                                   make_delegation):
    listing = make_listing(beds=1)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    browser = signed_in(app, coordinator)
    beds = bed_ids_of(listing)
    review = browser.get(review_url(beds))
    response = browser.post("/coordinator/review", data={
        **review_data(delegation, beds, payment_method="card"), "csrf_token": csrf_from(review)})
    booking = db.session.scalar(select(Booking))
    assert response.status_code == 302 and booking.status == "awaiting_payment"
    with app.test_request_context():
        expected = (url_for("payments.pay", booking_id=booking.id) if "payments.pay" in app.view_functions
                    else url_for("coordinator.booking", booking_id=booking.id))
    assert response.location.endswith(expected)


def test_cancel_shows_todays_refund_and_frees_the_beds(app, make_user, make_season, make_listing,
                                                       make_delegation, make_booking):
    season = make_season(free_cancellation_until=NOW.date() - timedelta(days=1), late_cancellation_refund_pct=50)
    listing = make_listing(beds=2, price_ore=50000, season=season)
    coordinator = make_user("coordinator")
    booking = make_booking(coordinator=coordinator, bed_ids=bed_ids_of(listing),
                 check_in=CHECK_IN, check_out=CHECK_OUT)
    assert booking.total_ore == 200000
    browser = signed_in(app, coordinator)

    page = browser.get(f"/coordinator/bookings/{booking.id}/cancel")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<dd class="refund"><strong>0 kr</strong></dd>' in html  # an unpaid invoice refunds nothing
    assert '<dd class="credit"><strong>1\u00a0000 kr</strong></dd>' in html  # it is credited the late 50 %
    db.session.expire_all()  # read the database, not the object this test made
    unchanged = db.session.get(Booking, booking.id)
    assert unchanged.status == "confirmed" and unchanged.refund_ore in (None, 0)  # a GET changed nothing
    assert set(db.session.scalars(select(BedNight.state).where(BedNight.booking_id == booking.id))) == {"booked"}

    response = browser.post(f"/coordinator/bookings/{booking.id}/cancel", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302
    db.session.expire_all()
    cancelled = db.session.get(Booking, booking.id)
    assert cancelled.status == "cancelled_by_guest" and cancelled.refund_ore == 0
    assert cancelled.invoice_credited_ore == 100000
    states = db.session.scalars(select(BedNight.state).where(BedNight.booking_id == booking.id)).all()
    assert states and set(states) == {"released"}
    other = make_user("coordinator")
    assert make_booking(coordinator=other, bed_ids=bed_ids_of(listing),
                 check_in=CHECK_IN, check_out=CHECK_OUT).status == "confirmed"

    again = browser.post(f"/coordinator/bookings/{booking.id}/cancel", data={"csrf_token": csrf_from(page)})
    assert again.status_code == 409


def test_rooming_assignment_block_view_and_csv(app, make_user, make_listing, make_delegation, make_booking):
    listing = make_listing(beds=2)
    first_bed, second_bed = bed_ids_of(listing)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator, members=2)
    booking = make_booking(delegation=delegation, bed_ids=[first_bed, second_bed],
                 check_in=CHECK_IN, check_out=CHECK_OUT)
    member = delegation.members[1]
    browser = signed_in(app, coordinator)

    url = f"/coordinator/bookings/{booking.id}/rooming"
    response = post_form(browser, url, url, {f"bed_{first_bed}": str(member.id), f"bed_{second_bed}": ""})
    assert response.status_code == 302
    rows = db.session.execute(select(BedNight.bed_id, BedNight.member_id).where(
        BedNight.booking_id == booking.id)).all()
    assert {(bed, m) for bed, m in rows} == {(first_bed, member.id), (second_bed, None)}
    assert f'<option selected value="{member.id}">' in browser.get(url).get_data(as_text=True)

    block = browser.get(f"/coordinator/delegations/{delegation.id}/block").get_data(as_text=True)
    assert block.count(f">{member.name}</a></td>") == 2           # bed 1, both nights
    assert block.count('<td class="slot-empty">') == 2             # bed 2, both nights, nobody yet
    assert f'datetime="{YEAR}-06-20"' in block and f'datetime="{YEAR}-06-21"' in block

    csv = browser.get(f"/coordinator/delegations/{delegation.id}/rooming.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert csv.data.startswith(b"\xef\xbb\xbf")
    lines = csv.data.decode("utf-8-sig").splitlines()
    assert lines[0] == "Natt;Boende;Rum;Säng;Gäst;Bokning"  # Swedish headers for a Swedish user
    assert len(lines) == 1 + 4
    assert f"{YEAR}-06-20;Rum i Visby;Rum 1;Säng 1;{member.name};{booking.id}" in lines


def test_two_members_in_one_bed_is_refused_without_a_500(app, make_user, make_listing, make_delegation, make_booking):
    listing = make_listing(beds=2)
    first_bed, second_bed = bed_ids_of(listing)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    booking = make_booking(delegation=delegation, bed_ids=[first_bed, second_bed],
                 check_in=CHECK_IN, check_out=CHECK_OUT)
    browser = signed_in(app, coordinator)
    url = f"/coordinator/bookings/{booking.id}/rooming"
    same = str(delegation.members[0].id)
    response = post_form(browser, url, url, {f"bed_{first_bed}": same, f"bed_{second_bed}": same})
    assert response.status_code == 409  # API.md: member_double_booked, in this booking or another
    assert "bara sova i en bädd" in response.get_data(as_text=True)
    assert db.session.scalar(select(BedNight.member_id).where(BedNight.member_id.is_not(None))) is None


def test_contract_pdf_and_flagging_the_host(app, make_user, make_listing, make_delegation, make_booking):
    listing = make_listing(beds=1)
    coordinator = make_user("coordinator")
    booking = make_booking(coordinator=coordinator, bed_ids=bed_ids_of(listing),
                 check_in=CHECK_IN, check_out=CHECK_OUT)
    browser = signed_in(app, coordinator)

    pdf = browser.get(f"/coordinator/contracts/{booking.contract.id}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")

    url = f"/coordinator/bookings/{booking.id}/flag"
    response = post_form(browser, url, url, {"category": "overcharging", "description": "Tog extra avgift."})
    assert response.status_code == 302
    flag = db.session.scalar(select(Flag))
    assert (flag.host_id, flag.booking_id, flag.reporter_id) == (listing.host_id, booking.id, coordinator.id)


def test_another_coordinator_gets_404_everywhere(app, make_user, make_listing, make_delegation, make_booking):
    listing = make_listing(beds=1)
    owner = make_user("coordinator")
    delegation = make_delegation(owner)
    booking = make_booking(delegation=delegation, bed_ids=bed_ids_of(listing),
                 check_in=CHECK_IN, check_out=CHECK_OUT)
    other = make_user("coordinator")
    make_delegation(other)
    browser = signed_in(app, other)
    for url in (f"/coordinator/bookings/{booking.id}", f"/coordinator/contracts/{booking.contract.id}.pdf",
                f"/coordinator/bookings/{booking.id}/rooming", f"/coordinator/bookings/{booking.id}/cancel",
                f"/coordinator/bookings/{booking.id}/flag", f"/coordinator/delegations/{delegation.id}",
                f"/coordinator/delegations/{delegation.id}/block",
                f"/coordinator/delegations/{delegation.id}/rooming.csv"):
        assert browser.get(url).status_code == 404, url
    token = csrf_from(browser.get("/coordinator/"))
    assert browser.post(f"/coordinator/bookings/{booking.id}/cancel", data={"csrf_token": token}).status_code == 404
    assert browser.post(f"/coordinator/delegations/{delegation.id}/members", data={
        "csrf_token": token, "name": "Inkräktare", "email": "x@example.se"}).status_code == 404
    assert db.session.get(Booking, booking.id).status == "confirmed"
    assert len(db.session.get(Delegation, delegation.id).members) == 2


@pytest.mark.parametrize("path", ["/coordinator/", "/coordinator/search", "/coordinator/bookings",
                                  "/coordinator/delegations/new"])
def test_host_gets_403_and_anonymous_goes_to_login(app, make_host, path):
    assert signed_in(app, make_host()).get(path).status_code == 403
    anonymous = app.test_client().get(path)
    assert anonymous.status_code == 302 and "/login" in anonymous.location


def test_bad_search_input_is_a_4xx_with_the_message(app, make_user, make_listing):
    make_listing(beds=1)
    browser = signed_in(app, make_user("coordinator"))
    outside = browser.get(f"/coordinator/search?check_in={YEAR}-07-20&check_out={YEAR}-07-22&beds=1")
    assert outside.status_code == 422 and f"Säsongen {YEAR} har nätterna" in outside.get_data(as_text=True)
    backwards = browser.get(f"/coordinator/search?check_in={YEAR}-06-22&check_out={YEAR}-06-20&beds=1")
    assert backwards.status_code == 422 and "Utcheckningen måste vara efter incheckningen" in backwards.get_data(
        as_text=True)
    assert browser.get("/coordinator/search?check_in=nonsense&beds=x").status_code == 422
    assert browser.get(f"/coordinator/review?check_in={YEAR}-06-20").status_code == 302


@pytest.mark.parametrize("query", ["beds=1&max_price_kr=99999999999999999999",
                                   "beds=1&max_walking_minutes=99999999999999999999",
                                   "beds=99999999999999999999"])
def test_search_numbers_too_large_for_the_database_are_a_422(app, make_user, make_listing, query):
    make_listing(beds=1)
    browser = signed_in(app, make_user("coordinator"))
    response = browser.get(f"/coordinator/search?check_in={YEAR}-06-20&check_out={YEAR}-06-22&{query}")
    assert response.status_code == 422 and "Talet är för stort." in response.get_data(as_text=True)


def test_review_of_a_bed_id_too_large_for_the_database_goes_back_to_search(app, make_user, make_listing):
    make_listing(beds=1)
    browser = signed_in(app, make_user("coordinator"))
    response = browser.get(f"/coordinator/review?check_in={YEAR}-06-20&check_out={YEAR}-06-22&bed_ids=" + "9" * 20)
    assert response.status_code == 302 and response.location.endswith("/coordinator/search")
