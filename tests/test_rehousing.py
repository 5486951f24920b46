"""The rehousing guarantee (issue 17): a host's breach holds comparable beds for the coordinator as an `offered`
booking for 48 hours, at no more per bed-night than the breached contract; accepting forms its own contract naming
the breached one, and the price difference is owed once by the breaching host."""
from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import BedNight, Booking, HostDeduction, OutboxEmail, Payout, User
from app.services import cancellations, ledger, payouts, rehousing
from app.services.base import Actor
from app.services.errors import Conflict, DomainError
from tests.helpers import NOW, YEAR, api_book, signed_in


def _offer_lines(booking_id):
    return [(line.bed_id, line.night, line.state, line.price_ore) for line in db.session.scalars(
        select(BedNight).where(BedNight.booking_id == booking_id).order_by(BedNight.night, BedNight.bed_id))]


@pytest.fixture
def breach(make_listing, make_user, make_delegation, make_booking, make_host):
    """A 2-bed listing at 500 kr, booked for two nights on invoice; elsewhere a dearer listing (600 kr, 5 minutes
    farther), one too far away (21 minutes farther) and one of the same host."""
    def make(*, other_price=60000, other_walking=15, payment_method="invoice", beds=2):
        host = make_host()
        listing = make_listing(host=host, beds=beds, price_ore=50000, walking_minutes=10, title="Brutet")
        own_other = make_listing(host=host, beds=beds, price_ore=40000, walking_minutes=10, title="Samma värd")
        far = make_listing(beds=beds, price_ore=30000, walking_minutes=31, title="Långt bort")
        other = make_listing(beds=beds, price_ore=other_price, walking_minutes=other_walking, title="Ersättning")
        coordinator = make_user("coordinator")
        delegation = make_delegation(coordinator)
        booking = make_booking(listing=listing, delegation=delegation, payment_method=payment_method, now=NOW)
        return {"host": host, "listing": listing, "own_other": own_other, "far": far, "other": other,
                "coordinator": coordinator, "delegation": delegation, "booking": booking}
    return make


def _cancel(world, now=NOW):
    return cancellations.cancel_by_host(Actor(world["host"].id, "host"), world["booking"].id, "Vattenskada",
                                        now=now)


def test_a_breach_holds_comparable_beds_at_no_more_than_the_original_price(breach):
    world = breach()
    _cancel(world)
    offer = rehousing.current_offer(world["booking"].id)
    assert offer is not None and len(offer.booking_ids) == 1
    held = db.session.get_one(Booking, offer.booking_ids[0])
    print("offer", held.id, held.status, held.listing_id, held.total_ore, held.expires_at, _offer_lines(held.id))
    # Not the breaching host's cheaper listing, not the one 21 minutes farther: the comparable one.
    assert held.listing_id == world["other"].id
    assert (held.status, held.payment_method, held.rehoused_from_id) == ("offered", "invoice", world["booking"].id)
    assert held.expires_at == NOW + timedelta(hours=48)
    lines = _offer_lines(held.id)
    assert len(lines) == 4 and {state for *_x, state, _p in lines} == {"held"}
    assert {price for *_x, price in lines} == {50000}  # min(600 kr, 500 kr) per bed-night
    assert held.total_ore == world["booking"].total_ore


def test_a_cheaper_listing_is_offered_at_its_own_price_and_owes_nothing(breach):
    world = breach(other_price=45000)
    _cancel(world)
    offer = rehousing.current_offer(world["booking"].id)
    held = db.session.get_one(Booking, offer.booking_ids[0])
    assert {price for *_x, price in _offer_lines(held.id)} == {45000}
    parts = rehousing.accept(Actor(world["coordinator"].id, "coordinator"), held.id, accept_contract=True, now=NOW)
    assert parts[0].status == "confirmed"
    assert db.session.scalars(select(HostDeduction)).all() == []


def test_no_comparable_beds_no_offer(breach):
    world = breach(other_walking=21)  # 11 minutes farther than the breached listing: not comparable
    _cancel(world)
    assert rehousing.current_offer(world["booking"].id) is None


def test_an_offer_takes_bed_nights_under_the_same_unique_index(breach, make_booking, make_delegation):
    world = breach()
    _cancel(world)
    held = db.session.get_one(Booking, rehousing.current_offer(world["booking"].id).booking_ids[0])
    # Anyone else booking those beds is refused while the offer holds them ...
    with pytest.raises(Conflict) as refused:
        make_booking(bed_ids=[line.bed_id for line in held.lines][:1], now=NOW)
    assert refused.value.code == "bed_nights_taken"
    # ... and the database itself refuses a second occupying row for one of its bed-nights.
    line = held.lines[0]
    db.session.add(BedNight(bed_id=line.bed_id, night=line.night, state="booked", created_at=NOW))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_accepting_forms_a_contract_naming_the_breached_one_and_the_difference_is_owed_once(breach):
    world = breach()
    breached = world["booking"]
    _cancel(world)
    offer_id = rehousing.current_offer(breached.id).booking_ids[0]
    coordinator = Actor(world["coordinator"].id, "coordinator")
    parts = rehousing.accept(coordinator, offer_id, accept_contract=True, now=NOW + timedelta(hours=1))
    booking = parts[0]
    snapshot = json.loads(booking.contract.snapshot)
    print("accepted", booking.id, booking.status, booking.total_ore, snapshot["rehousing"])
    assert booking.status == "confirmed" and booking.invoice_number
    assert snapshot["rehousing"]["breached_contract"] == breached.contract.number
    assert snapshot["rehousing"]["difference_ore"] == 4 * 10000
    assert {line["price_ore"] for line in snapshot["lines"]} == {50000}
    assert {line.state for line in booking.lines} == {"booked"}
    # Accepting again is refused; recording the deduction again changes nothing.
    with pytest.raises(Conflict) as again:
        rehousing.accept(coordinator, offer_id, accept_contract=True, now=NOW + timedelta(hours=2))
    assert again.value.code == "state_changed"
    rehousing.record_deduction(booking, NOW)
    deductions = db.session.scalars(select(HostDeduction)).all()
    assert [(d.host_id, d.breached_booking_id, d.offer_booking_id, d.amount_ore) for d in deductions] == [
        (world["host"].id, breached.id, booking.id, 40000)]
    statement = payouts.host_statement(world["host"].id, now=NOW)
    assert statement.deducted_ore == 40000 and len(statement.deductions) == 1
    # The new host earns the full list price: what the coordinator pays (an invoice's money once it is received)
    # plus what the breaching host owes.
    assert ledger.host_share_ore(booking) == 40000
    from app.services import invoices
    invoices.record_payment(Actor(None, "admin"), booking.invoice_number, booking.total_ore, NOW.date(), now=NOW)
    assert ledger.host_share_ore(booking) == 4 * 60000


def test_declining_or_lapsing_releases_the_beds(breach, make_booking):
    world = breach()
    _cancel(world)
    offer_id = rehousing.current_offer(world["booking"].id).booking_ids[0]
    bed_ids = [line.bed_id for line in db.session.get_one(Booking, offer_id).lines]
    rehousing.decline(Actor(world["coordinator"].id, "coordinator"), offer_id, now=NOW)
    assert db.session.get_one(Booking, offer_id).status == "expired"
    assert {state for *_x, state, _p in _offer_lines(offer_id)} == {"released"}
    assert make_booking(bed_ids=sorted(set(bed_ids)), now=NOW).status == "confirmed"

    second = breach()
    _cancel(second)
    lapsing = rehousing.current_offer(second["booking"].id).booking_ids[0]
    assert rehousing.lapse_due(NOW + timedelta(hours=47)) == 0
    with pytest.raises(Conflict) as late:
        rehousing.accept(Actor(second["coordinator"].id, "coordinator"), lapsing, accept_contract=True,
                         now=NOW + timedelta(hours=48))
    assert late.value.code == "offer_expired"
    assert rehousing.lapse_due(NOW + timedelta(hours=48)) == 1
    assert db.session.get_one(Booking, lapsing).status == "expired"
    coordinator = db.session.get_one(User, second["coordinator"].id)
    assert db.session.scalars(select(OutboxEmail).where(
        OutboxEmail.to_address == coordinator.email,
        OutboxEmail.subject == "Erbjudandet om ersättningsboende har gått ut")).one()
    assert {state for *_x, state, _p in _offer_lines(lapsing)} == {"released"}


def test_only_its_coordinator_answers_and_the_contract_must_be_accepted(breach, make_user):
    world = breach()
    _cancel(world)
    offer_id = rehousing.current_offer(world["booking"].id).booking_ids[0]
    stranger = make_user("coordinator")
    with pytest.raises(DomainError):
        rehousing.accept(Actor(stranger.id, "coordinator"), offer_id, accept_contract=True, now=NOW)
    with pytest.raises(DomainError) as unaccepted:
        rehousing.accept(Actor(world["coordinator"].id, "coordinator"), offer_id, accept_contract=False, now=NOW)
    assert unaccepted.value.code == "invalid"
    assert db.session.get_one(Booking, offer_id).status == "offered"


def test_a_card_breach_is_rehoused_by_card_and_owes_only_once_paid(breach):
    world = breach(payment_method="card")
    _cancel(world)
    offer_id = rehousing.current_offer(world["booking"].id).booking_ids[0]
    assert db.session.get_one(Booking, offer_id).payment_method == "card"
    parts = rehousing.accept(Actor(world["coordinator"].id, "coordinator"), offer_id, accept_contract=True,
                             now=NOW)
    assert parts[0].status == "awaiting_payment" and parts[0].contract is not None
    assert {line.state for line in parts[0].lines} == {"held"}
    assert db.session.scalars(select(HostDeduction)).all() == []  # owed when the payment confirms it


def test_several_listings_make_one_offer(make_listing, make_user, make_delegation, make_booking, make_host):
    host = make_host()
    listing = make_listing(host=host, beds=3, price_ore=50000, walking_minutes=10)
    first = make_listing(beds=2, price_ore=50000, walking_minutes=12)
    second = make_listing(beds=1, price_ore=70000, walking_minutes=14)
    booking = make_booking(listing=listing, now=NOW)
    cancellations.cancel_by_host(Actor(host.id, "host"), booking.id, "Sålt", now=NOW)
    offer = rehousing.current_offer(booking.id)
    parts = [db.session.get_one(Booking, booking_id) for booking_id in offer.booking_ids]
    assert sorted(part.listing_id for part in parts) == sorted([first.id, second.id])
    prices = sorted(line.price_ore for part in parts for line in part.lines)
    assert prices == [50000] * 6  # no bed-night dearer than the breached contract's
    accepted = rehousing.accept(Actor(booking.coordinator_id, "coordinator"), offer.booking_ids[0],
                                accept_contract=True, now=NOW)
    assert {part.status for part in accepted} == {"confirmed"}
    assert [d.amount_ore for d in db.session.scalars(select(HostDeduction))] == [2 * 20000]


def test_breach_end_to_end_through_the_api(breach, api_as, app):
    """Cancellation → offer e-mail → accepted → ledger line, as each door answers."""
    world = breach()
    host_api, coord_api = api_as(world["host"]), api_as(world["coordinator"])
    # The fixture booked through the service; book once more through the API on the breaching host's other beds.
    booked = api_book(coord_api, world["delegation"].id, [b.id for b in world["own_other"].beds()])
    assert booked.status_code == 201
    booking_id = booked.get_json()["id"]
    cancel = host_api.post(f"/bookings/{booking_id}/host-cancel", {"reason": "Vattenskada"})
    print("1. POST host-cancel:", cancel.status_code, cancel.get_json())
    assert cancel.status_code == 200
    rehousing_json = cancel.get_json()["rehousing"]
    assert rehousing_json["booking_ids"] == [rehousing_json["booking_id"]]
    offer_id = rehousing_json["booking_id"]
    coordinator = db.session.get_one(User, world["coordinator"].id)
    mails = db.session.scalars(select(OutboxEmail).where(OutboxEmail.to_address == coordinator.email)
                               .order_by(OutboxEmail.id)).all()
    offer_mail = next(m for m in mails if "Ersättningsboende" in m.subject)
    print("2. offer e-mail:", offer_mail.subject, "\n", offer_mail.body_text)
    assert f"/coordinator/bookings/{offer_id}/offer" in offer_mail.body_text
    offered = coord_api.get(f"/bookings/{offer_id}").get_json()
    assert offered["status"] == "offered" and offered["rehoused_from_id"] == booking_id
    accepted = coord_api.post(f"/bookings/{offer_id}/accept", {"accept_contract": True})
    print("3. POST accept:", accepted.status_code, {k: accepted.get_json()[k] for k in (
        "id", "status", "total_ore", "payment_method", "rehoused_from_id", "booking_ids", "contract")})
    assert accepted.status_code == 200 and accepted.get_json()["status"] == "confirmed"
    statement = payouts.host_statement(world["host"].id, now=NOW)
    print("4. breaching host's ledger:", statement.deductions, "deducted_ore", statement.deducted_ore)
    assert [(d.breached_booking_id, d.offer_booking_id) for d in statement.deductions] == [(booking_id, offer_id)]
    # Withheld from the breaching host's payouts: their other booking's payout is paid less the difference, and
    # the new host is paid its full price (both invoices paid first: invoice money counts once received).
    from app.services import invoices
    for paid_id in (world["booking"].id, offer_id):
        paid_booking = db.session.get_one(Booking, paid_id)
        invoices.record_payment(Actor(None, "admin"), paid_booking.invoice_number, paid_booking.total_ore,
                                NOW.date(), now=NOW)
    payouts.sync_payouts(now=datetime(YEAR, 6, 23, 12, tzinfo=UTC))
    paid = {p.booking_id: (p.amount_ore, p.withheld_ore) for p in db.session.scalars(select(Payout))}
    print("5. payouts after sync (amount, withheld):", paid)
    difference = statement.deducted_ore
    assert paid[world["booking"].id] == (world["booking"].total_ore - difference, difference)
    offer = db.session.get_one(Booking, offer_id)
    assert paid[offer_id] == (offer.total_ore + difference, 0)
    payouts.sync_payouts(now=datetime(YEAR, 6, 23, 13, tzinfo=UTC))  # idempotent
    assert {p.booking_id: (p.amount_ore, p.withheld_ore) for p in db.session.scalars(select(Payout))} == paid
    page = signed_in(app, db.session.get_one(User, world["host"].id)).get("/host/payouts")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Avdrag för ersättningsboende" in text and "efter avdrag" in text
    # The offer's first night is the breached one's: no passed night, the same beds' count.
    assert date.fromisoformat(accepted.get_json()["check_in"]) == date(YEAR, 6, 21)


def test_the_lapse_command_releases_offers_past_their_time(breach, runner, monkeypatch):
    world = breach()
    _cancel(world)
    offer_id = rehousing.current_offer(world["booking"].id).booking_ids[0]
    monkeypatch.setattr("app.services.base.utcnow", lambda: NOW + timedelta(hours=48))
    result = runner.invoke(args=["holds", "lapse-rehousing"])
    assert result.exit_code == 0 and "Released 1 rehousing offer" in result.output
    db.session.expire_all()
    assert db.session.get_one(Booking, offer_id).status == "expired"


def test_the_offer_page_shows_the_contract_and_accepts_or_declines(breach, app):
    from tests.helpers import csrf_from
    world = breach()
    _cancel(world)
    offer_id = rehousing.current_offer(world["booking"].id).booking_ids[0]
    browser = signed_in(app, db.session.get_one(User, world["coordinator"].id))
    page = browser.get(f"/coordinator/bookings/{offer_id}/offer")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Ersättning" in text and "Ta emot erbjudandet" in text
    # Without ticking the contract: refused on the page, nothing changes.
    refused = browser.post(f"/coordinator/bookings/{offer_id}/offer/accept", data={"csrf_token": csrf_from(page)})
    assert refused.status_code == 422
    assert db.session.get_one(Booking, offer_id).status == "offered"
    done = browser.post(f"/coordinator/bookings/{offer_id}/offer/accept",
                        data={"csrf_token": csrf_from(page), "accept_contract": "y"})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get_one(Booking, offer_id).status == "confirmed"
    # Another breach: declined from its page.
    second = breach()
    _cancel(second)
    other_id = rehousing.current_offer(second["booking"].id).booking_ids[0]
    browser = signed_in(app, db.session.get_one(User, second["coordinator"].id))
    page = browser.get(f"/coordinator/bookings/{other_id}/offer")
    assert browser.post(f"/coordinator/bookings/{other_id}/offer/decline",
                        data={"csrf_token": csrf_from(page)}).status_code == 302
    db.session.expire_all()
    assert db.session.get_one(Booking, other_id).status == "expired"


def test_a_card_rehousing_is_paid_as_any_card_booking_and_then_owed(breach, api_as, stripe_app, no_stripe_webhooks):
    world = breach(payment_method="card")
    _cancel(world)
    offer_id = rehousing.current_offer(world["booking"].id).booking_ids[0]
    coordinator = api_as(db.session.get_one(User, world["coordinator"].id))
    accepted = coordinator.post(f"/bookings/{offer_id}/accept", {"accept_contract": True}).get_json()
    assert accepted["status"] == "awaiting_payment"
    paid = coordinator.post(f"/bookings/{offer_id}/payment", json={"payment_method_id": "pm_card_visa"}).get_json()
    print("card rehousing paid:", paid.get("status"))
    assert paid["status"] == "succeeded", paid
    db.session.expire_all()
    booking = db.session.get_one(Booking, offer_id)
    assert booking.status == "confirmed" and {line.state for line in booking.lines} == {"booked"}
    assert [(d.offer_booking_id, d.amount_ore) for d in db.session.scalars(select(HostDeduction))] == [
        (offer_id, 4 * 10000)]


def test_the_worker_lapses_offers_past_their_time(breach):
    """The worker's lapse_rehousing job releases an offer once its 48 hours are over, and only then."""
    from app.services import jobs

    world = breach()
    _cancel(world)
    offer_id = rehousing.current_offer(world["booking"].id).booking_ids[0]
    job = next(job for job in jobs.PERIODIC if job.name == "lapse_rehousing")
    assert job.run_once(now=NOW + timedelta(hours=47)) == ""
    assert job.run_once(now=NOW + timedelta(hours=48)) == "lapsed 1"
    db.session.expire_all()
    assert db.session.get_one(Booking, offer_id).status == "expired"
