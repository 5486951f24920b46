"""Issue 12: each member's itinerary, on a private page and by e-mail when they get a bed and whenever it changes."""
from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import urlsplit

import pytest
from babel.dates import format_date
from sqlalchemy import select

from app.extensions import db
from app.models import HostProfile, Member, OutboxEmail, User
from app.services import accounts, cancellations, delegations, itineraries, payments, rooming, settlement
from app.services.base import Actor
from app.services.jobs import expire_holds
from app.services.stripe_gateway import CURRENCY, IntentView
from tests.helpers import NOW, YEAR, csrf_from, valid_organisation_number
from tests.pause import interleave

BASE = "https://sangplats.example"
PHONE = "+46 498 123 456"  # every test host's (conftest.make_host)


@pytest.fixture
def world(app, make_listing, make_user, make_booking, api_as):
    """A 3-bed listing, a delegation with Anna and Bo, and its confirmed (invoice) booking of every bed for the
    nights of 21 and 22 June; links are built on BASE, never on the test client's host."""
    app.config["BASE_URL"] = BASE
    listing = make_listing(beds=3, title="Villa Solsidan", walking_minutes=7)
    coordinator = make_user("coordinator", name="Cecilia Samordnare")
    actor = Actor(coordinator.id, "coordinator")
    delegation = delegations.create_delegation(actor, "Föreningen Framtid", valid_organisation_number(1))
    anna = delegations.add_member(actor, delegation.id, "Anna Andersson", "anna@example.se")
    bo = delegations.add_member(actor, delegation.id, "Bo Berg", "bo@example.se")
    booking = make_booking(listing=listing, delegation=delegation)
    host = db.session.get_one(HostProfile, listing.host_id)
    return {"listing": listing, "beds": [b.id for b in listing.beds()], "coordinator": coordinator, "actor": actor,
            "delegation": delegation, "anna": anna, "bo": bo, "booking": booking, "host": host,
            "coord": api_as(coordinator)}


def mails(to: str) -> list[OutboxEmail]:
    return list(db.session.scalars(select(OutboxEmail).where(OutboxEmail.to_address == to).order_by(OutboxEmail.id)))


def put_rooming(world, pairs, booking=None):
    """The coordinator's rooming save through the API: pairs of (bed index, member or None)."""
    booking = booking or world["booking"]
    response = world["coord"].put(f"/bookings/{booking.id}/rooming", {"assignments": [
        {"bed_id": world["beds"][i], "member_id": member.id if member else None} for i, member in pairs]})
    assert response.status_code == 200, response.get_json()
    return response


def link_of(member: Member) -> str:
    db.session.refresh(member)
    return f"{BASE}/itinerary/{member.itinerary_token}"


def day(value: date, locale: str = "sv") -> str:
    return format_date(value, "EEEE d MMMM y", locale=locale)


def page(client, member: Member):
    return client.get(urlsplit(link_of(member)).path)


# ---------------------------------------------------------------------------------------------
# Assigning beds
# ---------------------------------------------------------------------------------------------


def test_assigning_beds_mails_each_member_once_with_where_they_sleep_and_the_link(world):
    put_rooming(world, [(0, world["anna"]), (1, world["bo"])])

    [anna_mail] = mails("anna@example.se")
    [bo_mail] = mails("bo@example.se")
    body = anna_mail.body_text
    assert anna_mail.subject == "Här bor du under Almedalsveckan: Föreningen Framtid"
    for fact in ("Hej Anna Andersson!", "Villa Solsidan", "Strandgatan 1, 621 56", "7 minuters promenad",
                 "Rum: Rum 1, bädd: Säng 1", f"{day(date(YEAR, 6, 21))} – {day(date(YEAR, 6, 23))}",
                 "nätter: 2", PHONE, "Cecilia Samordnare", link_of(world["anna"])):
        assert fact in body, (fact, body)
    assert "Säng 2" not in body and "Bo Berg" not in body
    assert "bädd: Säng 2" in bo_mail.body_text and link_of(world["bo"]) in bo_mail.body_text
    # The link is on BASE_URL, never on the host the request came to.
    assert "localhost" not in body
    # The coordinator's API lists the same private link for each member.
    members = world["coord"].get(f"/delegations/{world['delegation'].id}").get_json()["members"]
    assert {m["name"]: m["itinerary_url"] for m in members} == {
        "Anna Andersson": link_of(world["anna"]), "Bo Berg": link_of(world["bo"])}


def test_the_link_shows_the_same_itinerary_privately(world, client):
    put_rooming(world, [(0, world["anna"]), (1, world["bo"])])
    response = page(client, world["anna"])
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for fact in ("Anna Andersson", "Föreningen Framtid", "Villa Solsidan", "Strandgatan 1, 621 56",
                 "7 minuters promenad", "Rum 1", "Säng 1", PHONE, world["host"].legal_name,
                 format_date(date(YEAR, 6, 21), "EEEE d MMMM y", locale="sv"),
                 format_date(date(YEAR, 6, 23), "EEEE d MMMM y", locale="sv"), "Cecilia Samordnare"):
        assert fact in html, fact
    assert '<meta name="robots" content="noindex, nofollow">' in html
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    # Another member's link shows only their own bed.
    other = page(client, world["bo"]).get_data(as_text=True)
    assert "Bo Berg" in other and "Säng 2" in other
    assert "Anna Andersson" not in other and "Säng 1" not in other


def test_the_page_follows_the_language_switch(world, client):
    put_rooming(world, [(0, world["anna"])])
    path = urlsplit(link_of(world["anna"])).path
    english = client.get(path + "?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "Itinerary for Anna Andersson" in english
    assert format_date(date(YEAR, 6, 21), "EEEE d MMMM y", locale="en") in english
    assert '<html lang="sv">' in client.get(path + "?lang=sv").get_data(as_text=True)


@pytest.mark.parametrize("token", ["wrong", "x" * 43, "x" * 500])
def test_a_wrong_token_is_404(world, client, token):
    assert client.get(f"/itinerary/{token}").status_code == 404


def test_a_member_without_a_bed_sees_so(world, client):
    html = page(client, world["anna"]).get_data(as_text=True)
    assert "Du har ingen bädd just nu" in html and "Villa Solsidan" not in html
    assert mails("anna@example.se") == []


def test_a_save_that_changes_nothing_sends_nothing(world):
    put_rooming(world, [(0, world["anna"]), (1, world["bo"])])
    put_rooming(world, [(0, world["anna"]), (1, world["bo"])])
    put_rooming(world, [(1, world["bo"]), (2, None)])
    assert len(mails("anna@example.se")) == 1 and len(mails("bo@example.se")) == 1


def test_moving_a_member_sends_them_one_updated_itinerary(world):
    put_rooming(world, [(0, world["anna"]), (1, world["bo"])])
    put_rooming(world, [(0, None), (2, world["anna"])])
    first, moved = mails("anna@example.se")
    assert "ändrad" in moved.subject
    assert "bädd: Säng 3" in moved.body_text and "Säng 1" not in moved.body_text
    assert link_of(world["anna"]) in moved.body_text  # the same link as before
    assert link_of(world["anna"]) in first.body_text
    assert len(mails("bo@example.se")) == 1  # Bo's bed did not change


def test_swapping_two_members_sends_each_one_message(world):
    """Leaving one bed and taking another in the same save is one change, one message."""
    put_rooming(world, [(0, world["anna"]), (1, world["bo"])])
    put_rooming(world, [(0, world["bo"]), (1, world["anna"])])
    assert [len(mails("anna@example.se")), len(mails("bo@example.se"))] == [2, 2]
    assert "bädd: Säng 2" in mails("anna@example.se")[-1].body_text


def test_unassigning_tells_the_member_they_no_longer_have_a_bed(world, client):
    put_rooming(world, [(0, world["anna"]), (1, world["bo"])])
    put_rooming(world, [(0, None)])
    _first, gone = mails("anna@example.se")
    assert "inte längre någon bädd" in gone.subject and "Villa Solsidan" not in gone.body_text
    assert "Du har ingen bädd just nu" in page(client, world["anna"]).get_data(as_text=True)
    assert len(mails("bo@example.se")) == 1
    # Given a bed again, she hears where, as the first time.
    put_rooming(world, [(2, world["anna"])])
    assert "Här bor du" in mails("anna@example.se")[-1].subject


@pytest.mark.parametrize("who", ["guest", "host"])
def test_a_cancelled_booking_tells_each_of_its_members_once(world, client, who):
    put_rooming(world, [(0, world["anna"]), (1, world["bo"])])
    if who == "guest":
        cancellations.cancel_by_guest(world["actor"], world["booking"].id)
    else:
        cancellations.cancel_by_host(Actor(world["host"].user_id, "host"), world["booking"].id, "Vattenskada")
    for address in ("anna@example.se", "bo@example.se"):
        _first, gone = mails(address)
        assert "inte längre någon bädd" in gone.subject
    html = page(client, world["bo"]).get_data(as_text=True)
    assert "Du har ingen bädd just nu" in html and "Villa Solsidan" not in html


def test_a_partial_cancellation_tells_the_members_whose_nights_it_took(world, client):
    """Cancelling some bed-nights (an amendment) clears their members from those lines: the member who lost every
    night hears they have no bed, the one who lost a night gets the shorter stay, the untouched one nothing."""
    put_rooming(world, [(0, world["anna"]), (1, world["bo"]), (2, None)])
    first, second = date(YEAR, 6, 21), date(YEAR, 6, 22)
    cancellations.cancel_lines(world["actor"], world["booking"].id,
                               [(world["beds"][0], first), (world["beds"][0], second), (world["beds"][1], second)],
                               now=NOW)
    _first, gone = mails("anna@example.se")
    assert "inte längre någon bädd" in gone.subject
    _first, shorter = mails("bo@example.se")
    assert "resplan är ändrad" in shorter.subject
    assert f"{day(first)} – {day(second)}" in shorter.body_text, shorter.body_text
    assert "Du har ingen bädd just nu" in page(client, world["anna"]).get_data(as_text=True)


def test_another_live_booking_stays_on_the_itinerary_when_one_is_cancelled(world, make_booking, make_listing):
    other = make_booking(listing=make_listing(beds=1, title="Stugan"), delegation=world["delegation"],
                         check_in=date(YEAR, 6, 23), check_out=date(YEAR, 6, 24))
    put_rooming(world, [(0, world["anna"])])
    world["coord"].put(f"/bookings/{other.id}/rooming", {"assignments": [
        {"bed_id": other.lines[0].bed_id, "member_id": world["anna"].id}]})
    assert len(mails("anna@example.se")) == 2
    cancellations.cancel_by_guest(world["actor"], world["booking"].id)
    *_, changed = mails("anna@example.se")
    assert "ändrad" in changed.subject
    assert "Stugan" in changed.body_text and "Villa Solsidan" not in changed.body_text


# ---------------------------------------------------------------------------------------------
# Unpaid card bookings: no phone until confirmed
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def card(world, make_booking, make_listing):
    listing = make_listing(beds=1, title="Kortvillan")
    booking = make_booking(listing=listing, delegation=world["delegation"], payment_method="card")
    assert booking.status == "awaiting_payment"
    world["coord"].put(f"/bookings/{booking.id}/rooming", {"assignments": [
        {"bed_id": listing.beds()[0].id, "member_id": world["anna"].id}]})
    return booking


def test_an_unconfirmed_booking_shows_no_phone(world, card, client):
    [held] = mails("anna@example.se")
    assert "Kortvillan" in held.body_text and PHONE not in held.body_text
    html = page(client, world["anna"]).get_data(as_text=True)
    assert "Kortvillan" in html and PHONE not in html and "Visas när bokningen är betald" in html
    host_user = db.session.get_one(User, card.host_id)
    assert host_user.name in html  # the host's public name; the legal name comes with the contact
    legal_name = db.session.get_one(HostProfile, card.host_id).legal_name
    assert legal_name not in html and legal_name not in held.body_text


def test_payment_brings_the_phone_in_an_updated_itinerary(world, card, client):
    payment_id, attempt_key, amount = payments._begin_attempt(world["actor"], card.id, "pm_card_visa",
                                                              card.created_at)
    settlement.apply_intent(IntentView(id="pi_itinerary", status="succeeded", amount=amount, currency=CURRENCY,
                                       metadata={"booking_id": str(card.id), "attempt_key": attempt_key}),
                            now=card.created_at + timedelta(minutes=1))
    _held, paid = mails("anna@example.se")
    assert "ändrad" in paid.subject and PHONE in paid.body_text
    assert PHONE in page(client, world["anna"]).get_data(as_text=True)


def test_an_expired_hold_tells_its_members(world, card):
    expire_holds(now=card.expires_at + timedelta(minutes=1))
    _held, gone = mails("anna@example.se")
    assert "inte längre någon bädd" in gone.subject


# ---------------------------------------------------------------------------------------------
# Members' details
# ---------------------------------------------------------------------------------------------


def test_a_member_without_an_e_mail_address_gets_nothing(world):
    db.session.get_one(Member, world["anna"].id).email = ""
    db.session.commit()
    put_rooming(world, [(0, world["anna"]), (1, world["bo"])])
    assert db.session.scalar(select(OutboxEmail.id).where(OutboxEmail.to_address == "")) is None
    assert len(mails("bo@example.se")) == 1
    assert db.session.get_one(Member, world["anna"].id).itinerary_digest is not None


def test_a_rename_sends_nothing_but_a_new_address_gets_a_new_link(world, client):
    put_rooming(world, [(0, world["anna"])])
    old_link = link_of(world["anna"])
    d, m = world["delegation"].id, world["anna"].id
    assert world["coord"].patch(f"/delegations/{d}/members/{m}", {"name": "Anna Ny"}).status_code == 200
    assert len(mails("anna@example.se")) == 1 and link_of(world["anna"]) == old_link
    assert "Anna Ny" in page(client, world["anna"]).get_data(as_text=True)

    answer = world["coord"].patch(f"/delegations/{d}/members/{m}", {"email": "anna.ny@example.se"}).get_json()
    new_link = link_of(world["anna"])
    assert new_link != old_link and answer["itinerary_url"] == new_link
    assert client.get(urlsplit(old_link).path).status_code == 404
    [sent] = mails("anna.ny@example.se")
    assert new_link in sent.body_text and "Villa Solsidan" in sent.body_text
    assert len(mails("anna@example.se")) == 1


def test_the_coordinators_delegation_page_links_each_itinerary(world, client, login):
    login(world["coordinator"])
    html = client.get(f"/coordinator/delegations/{world['delegation'].id}").get_data(as_text=True)
    assert f'href="{link_of(world["anna"])}"' in html and f'href="{link_of(world["bo"])}"' in html
    # A member added on the page gets a link of their own at once.
    page_ = client.get(f"/coordinator/delegations/{world['delegation'].id}")
    client.post(f"/coordinator/delegations/{world['delegation'].id}/members",
                data={"csrf_token": csrf_from(page_), "name": "Cilla", "email": "cilla@example.se"})
    cilla = db.session.scalar(select(Member).where(Member.email == "cilla@example.se"))
    assert itineraries.member_by_token(cilla.itinerary_token).id == cilla.id


def test_the_mail_is_in_the_coordinators_language(world):
    accounts.set_locale(world["coordinator"].id, "en")
    put_rooming(world, [(0, world["anna"])])
    [sent] = mails("anna@example.se")
    assert sent.subject == "Where you stay during Almedalen Week: Föreningen Framtid"
    assert sent.body_text.startswith("Hello Anna Andersson,") and "Room: Rum 1, bed: Säng 1" in sent.body_text
    assert day(date(YEAR, 6, 21), "en") in sent.body_text and PHONE in sent.body_text


def test_the_service_builds_one_stay_per_bed_and_run_of_nights(world, make_booking, make_listing):
    """A bed for consecutive nights is one stay; another bed (here in another booking) is another, in date order."""
    stugan = make_listing(beds=1, title="Stugan")
    later = make_booking(listing=stugan, delegation=world["delegation"], check_in=date(YEAR, 6, 23),
                         check_out=date(YEAR, 6, 25))
    anna_id = world["anna"].id
    rooming.assign_rooming(world["actor"], later.id, [{"bed_id": stugan.beds()[0].id, "member_id": anna_id}])
    rooming.assign_rooming(world["actor"], world["booking"].id, [{"bed_id": world["beds"][0], "member_id": anna_id}])
    first, second = itineraries.itinerary(db.session.get_one(Member, anna_id)).stays
    assert (first.listing_title, first.check_in, first.check_out, first.nights, first.bed) == (
        "Villa Solsidan", date(YEAR, 6, 21), date(YEAR, 6, 23), 2, "Säng 1")
    assert (second.listing_title, second.check_in, second.check_out, second.nights) == (
        "Stugan", date(YEAR, 6, 23), date(YEAR, 6, 25), 2)
    assert first.host.phone == PHONE and first.confirmed


# ---------------------------------------------------------------------------------------------
# Two changes of one member's itinerary at once
# ---------------------------------------------------------------------------------------------


def _itinerary_read(sql: str) -> bool:
    return sql.startswith("SELECT bed_nights.night, bed_nights.booking_id") and "bed_nights.member_id =" in sql


def test_a_change_racing_another_mails_the_itinerary_with_both(app, world, make_booking, make_listing):
    """The rooming save is paused right after reading Anna's new itinerary (her row locked) while the coordinator
    cancels her other booking: the cancellation waits for the save and then mails the itinerary with both
    changes, so her last message is where she really sleeps. Without the lock it would read the state from
    before the save and her last message would still list the cancelled stay."""
    stugan = make_listing(beds=1, title="Stugan")
    other = make_booking(listing=stugan, delegation=world["delegation"], check_in=date(YEAR, 6, 23),
                         check_out=date(YEAR, 6, 24))
    put_rooming(world, [(0, world["anna"])])
    world["coord"].put(f"/bookings/{other.id}/rooming", {"assignments": [
        {"bed_id": stugan.beds()[0].id, "member_id": world["anna"].id}]})
    actor, booking_id, other_id = world["actor"], world["booking"].id, other.id
    beds, anna_id = world["beds"], world["anna"].id

    def move():
        rooming.assign_rooming(actor, booking_id, [{"bed_id": beds[0], "member_id": None},
                                                   {"bed_id": beds[2], "member_id": anna_id}])

    results, errors, how = interleave(app, ("rooming", move),
                                      ("cancel", lambda: cancellations.cancel_by_guest(actor, other_id)),
                                      _itinerary_read)
    assert not errors, (errors, how)
    db.session.rollback()
    *_, last = mails("anna@example.se")
    assert "bädd: Säng 3" in last.body_text and "Stugan" not in last.body_text, (how, last.body_text)
    anna = db.session.get_one(Member, anna_id)
    assert anna.itinerary_digest == itineraries.itinerary(anna).digest()
