"""Reports on arrival (issue 17): bed-nights missing or not as described are refunded in full at once, stay
locked, open a flag with the facts and get a rehousing offer for the nights not yet passed; a report sent twice at
once refunds once."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Amendment, BedNight, Booking, Flag, Refund
from app.services import booking as booking_service
from app.services import cancellations
from app.services.base import Actor
from app.services.errors import DomainError
from app.services.ledger import current_value_ore, host_share_ore
from tests.helpers import YEAR
from tests.pause import interleave

STOCKHOLM = ZoneInfo("Europe/Stockholm")
N21, N22, N23 = date(YEAR, 6, 21), date(YEAR, 6, 22), date(YEAR, 6, 23)
PRICE = 50000
ON_ARRIVAL = datetime(YEAR, 6, 21, 16, 0, tzinfo=STOCKHOLM)


@pytest.fixture
def world(make_listing, make_user, make_delegation):
    """A 2-bed listing booked (both beds, nights 21 and 22 June, invoice); a comparable listing elsewhere."""
    listing = make_listing(beds=2, price_ore=PRICE, walking_minutes=10)
    spare = make_listing(beds=2, price_ore=55000, walking_minutes=12, title="Reserv")
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    actor = Actor(coordinator.id, "coordinator")
    bed_ids = [bed.id for bed in listing.beds()]

    def book(method="invoice"):
        return booking_service.create_booking(actor, delegation_id=delegation.id, bed_ids=bed_ids, check_in=N21,
                                              check_out=N23, accept_contract=True, payment_method=method)

    return {"listing": listing, "spare": spare, "actor": actor, "bed_ids": bed_ids, "book": book,
            "coordinator": coordinator}


def fresh(booking_id: int) -> Booking:
    db.session.expire_all()
    return db.session.get_one(Booking, booking_id)


def states(booking_id: int) -> dict:
    db.session.expire_all()
    return {(b, n): s for b, n, s in db.session.execute(
        select(BedNight.bed_id, BedNight.night, BedNight.state).where(BedNight.booking_id == booking_id))}


def test_a_report_refunds_exactly_the_reported_bed_nights_flags_and_rehouses(world):
    booking = world["book"]()
    b1, b2 = world["bed_ids"]
    done = cancellations.report_on_arrival(world["actor"], booking.id, [(b1, N21), (b1, N22)], "missing",
                                           "Sängen finns inte; rummet har bara en säng.", now=ON_ARRIVAL)
    print("report:", done.refund_ore, done.invoice_credit_ore, done.lines, done.amendment.number, done.flag_id,
          done.rehousing)
    assert (done.refund_ore, done.invoice_credit_ore) == (0, 2 * PRICE)  # an unpaid invoice: credited in full
    after = fresh(booking.id)
    assert after.status == "confirmed" and after.invoice_credited_ore == 2 * PRICE
    assert states(booking.id) == {(b1, N21): "host_cancelled", (b1, N22): "host_cancelled",
                                  (b2, N21): "booked", (b2, N22): "booked"}
    amendment = db.session.scalars(select(Amendment).where(Amendment.booking_id == booking.id)).one()
    assert (amendment.kind, amendment.lines_ore, amendment.invoice_credit_ore) == ("arrival_report", 2 * PRICE,
                                                                                   2 * PRICE)
    # The host earns what is left, as invoice money is received (issue 16): nothing yet, all of it once paid.
    assert current_value_ore(after) == 2 * PRICE and host_share_ore(after) == 0
    from app.services import invoices
    invoices.record_payment(Actor(None, "admin"), after.invoice_number, 2 * PRICE, N21, now=ON_ARRIVAL)
    assert host_share_ore(fresh(booking.id)) == 2 * PRICE
    flag = db.session.get_one(Flag, done.flag_id)
    assert (flag.host_id, flag.booking_id, flag.status, flag.source) == (
        world["listing"].host_id, booking.id, "open", "coordinator")
    assert "missing" in flag.description and f"bed {b1} night {N21.isoformat()}" in flag.description
    # One bed for both nights, held elsewhere at no more than the contract's price per bed-night.
    assert done.rehousing is not None
    offer = db.session.get_one(Booking, done.rehousing.booking_ids[0])
    assert (offer.status, offer.listing_id, offer.check_in, offer.check_out) == ("offered", world["spare"].id, N21,
                                                                                 N23)
    assert sorted((line.night, line.price_ore) for line in offer.lines) == [(N21, PRICE), (N22, PRICE)]


def test_a_report_on_the_day_after_rehouses_only_the_nights_not_passed(world):
    booking = world["book"]()
    b1, _b2 = world["bed_ids"]
    late = datetime(YEAR, 6, 22, 23, 59, tzinfo=STOCKHOLM)  # the last minute of the window
    done = cancellations.report_on_arrival(world["actor"], booking.id, [(b1, N21), (b1, N22)], "not_as_described",
                                           "Madrassen saknas.", now=late)
    assert done.invoice_credit_ore == 2 * PRICE
    offer = db.session.get_one(Booking, done.rehousing.booking_ids[0])
    assert (offer.check_in, offer.check_out, len(offer.lines)) == (N22, N23, 1)


@pytest.mark.parametrize("when", [datetime(YEAR, 6, 20, 23, 59, tzinfo=STOCKHOLM),
                                  datetime(YEAR, 6, 23, 0, 0, tzinfo=STOCKHOLM)])
def test_outside_the_window_a_report_is_refused(world, when):
    booking = world["book"]()
    with pytest.raises(DomainError) as refused:
        cancellations.report_on_arrival(world["actor"], booking.id, [(world["bed_ids"][0], N21)], "missing",
                                        "Ingen säng.", now=when)
    assert (refused.value.code, refused.value.status) == ("report_window_closed", 422)
    assert set(states(booking.id).values()) == {"booked"}


def test_a_report_is_checked(world, make_user):
    booking = world["book"]()
    b1, _b2 = world["bed_ids"]
    with pytest.raises(DomainError) as bad:
        cancellations.report_on_arrival(world["actor"], booking.id, [(b1, N21)], "dirty", "", now=ON_ARRIVAL)
    assert set(bad.value.errors) == {"category", "description"}
    with pytest.raises(DomainError) as stranger:
        cancellations.report_on_arrival(world["actor"], booking.id, [(b1, date(YEAR, 6, 24))], "missing", "x",
                                        now=ON_ARRIVAL)
    assert "lines" in stranger.value.errors
    other = Actor(make_user("coordinator").id, "coordinator")
    with pytest.raises(DomainError):
        cancellations.report_on_arrival(other, booking.id, [(b1, N21)], "missing", "x", now=ON_ARRIVAL)


def test_the_api_answers_report_window_closed(world, api_as):
    booking = world["book"]()
    response = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/report", {
        "lines": [{"bed_id": world["bed_ids"][0], "night": N21.isoformat()}], "category": "missing",
        "description": "Ingen säng."})
    assert response.status_code == 422 and response.get_json()["code"] == "report_window_closed"


def test_the_api_reports_on_arrival(world, api_as, monkeypatch):
    booking = world["book"]()
    monkeypatch.setattr("app.services.base.utcnow", lambda: ON_ARRIVAL)
    response = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/report", {
        "lines": [{"bed_id": world["bed_ids"][0], "night": N21.isoformat()}], "category": "missing",
        "description": "Ingen säng."})
    body = response.get_json()
    print("POST report:", response.status_code, body)
    assert response.status_code == 200
    assert (body["invoice_credit_ore"], body["refund_ore"], body["amendment"]["kind"]) == (PRICE, 0, "arrival_report")
    assert body["rehousing"]["booking_ids"] == [body["rehousing"]["booking_id"]]
    again = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/report", {
        "lines": [{"bed_id": world["bed_ids"][0], "night": N21.isoformat()}], "category": "missing",
        "description": "Ingen säng."})
    assert again.status_code == 409 and again.get_json()["code"] == "state_changed"
    assert fresh(booking.id).invoice_credited_ore == PRICE


def _updates_bed_nights(sql: str) -> bool:
    return sql.startswith("UPDATE bed_nights SET state")


@pytest.mark.parametrize("lock", ["booking lock", "row count only"])
def test_a_report_sent_twice_at_once_refunds_once(app, world, monkeypatch, lock):
    """Side A is paused right after it locked its bed-nights (before its commit); B runs until it waits on a lock
    or finishes; then A goes. With the booking lock B waits; without it (patched out) B's conditional UPDATE is
    the backstop. Either way one report refunds, the other answers state_changed."""
    booking = world["book"]()
    b1, _b2 = world["bed_ids"]
    booking_id, actor = booking.id, world["actor"]
    if lock == "row count only":
        monkeypatch.setattr(cancellations, "locked_booking", lambda booking_id: db.session.get(Booking, booking_id))

    def report():
        return cancellations.report_on_arrival(actor, booking_id, [(b1, N21), (b1, N22)], "missing", "Ingen säng.",
                                               now=ON_ARRIVAL).invoice_credit_ore

    results, errors, how = interleave(app, ("a", report), ("b", report), _updates_bed_nights)
    lost = {side: getattr(error, "code", repr(error)) for side, error in errors}
    after = fresh(booking_id)
    amendments = db.session.scalars(select(Amendment).where(Amendment.booking_id == booking_id)).all()
    flags = db.session.scalars(select(Flag).where(Flag.booking_id == booking_id)).all()
    facts = f"{how} ({lock}): results {results}, lost {lost}, credited {after.invoice_credited_ore}"
    print(facts)
    assert list(results) == ["a"] and results["a"] == 2 * PRICE and lost == {"b": "state_changed"}, facts
    assert after.invoice_credited_ore == 2 * PRICE and len(amendments) == 1 and len(flags) == 1, facts
    assert len(db.session.scalars(select(Booking).where(Booking.rehoused_from_id == booking_id)).all()) == 1, facts
    assert db.session.scalars(select(Refund)).all() == []  # an invoice: credited, never refunded


def test_a_card_report_refunds_the_reported_bed_nights_in_full(world, api_as, stripe_app, no_stripe_webhooks):
    booking = world["book"]("card")
    paid = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/payment",
                                             json={"payment_method_id": "pm_card_visa"}).get_json()
    assert paid["status"] == "succeeded", paid
    b1, _b2 = world["bed_ids"]
    done = cancellations.report_on_arrival(world["actor"], booking.id, [(b1, N21)], "not_as_described",
                                           "Sängen är trasig.", now=ON_ARRIVAL)
    refunds = db.session.scalars(select(Refund).where(Refund.booking_id == booking.id)).all()
    print("card report:", done.refund_ore, [(r.amount_ore, r.reason, r.status) for r in refunds])
    assert (done.refund_ore, done.invoice_credit_ore) == (PRICE, 0)
    assert [(r.amount_ore, r.reason) for r in refunds] == [(PRICE, "arrival_report")]
    assert fresh(booking.id).refund_ore == PRICE
    assert db.session.get_one(Booking, done.rehousing.booking_ids[0]).payment_method == "card"


def test_the_report_page_reports_and_leads_to_the_offer(world, app, monkeypatch):
    from app.models import User
    from tests.helpers import csrf_from, signed_in
    booking = world["book"]()
    b1, _b2 = world["bed_ids"]
    browser = signed_in(app, db.session.get_one(User, world["coordinator"].id))
    assert "Anmäl brist vid ankomst" in browser.get(f"/coordinator/bookings/{booking.id}").get_data(as_text=True)
    page = browser.get(f"/coordinator/bookings/{booking.id}/report")
    assert page.status_code == 200 and f'value="{b1}:{N21.isoformat()}"' in page.get_data(as_text=True)
    data = {"csrf_token": csrf_from(page), "lines": [f"{b1}:{N21.isoformat()}"], "category": "missing",
            "description": "Ingen säng i rummet."}
    closed = browser.post(f"/coordinator/bookings/{booking.id}/report", data=data)  # today: before check-in
    assert closed.status_code == 422 and "dagen efter" in closed.get_data(as_text=True)
    monkeypatch.setattr("app.services.base.utcnow", lambda: ON_ARRIVAL)
    done = browser.post(f"/coordinator/bookings/{booking.id}/report", data=data)
    assert done.status_code == 302 and "/offer" in done.headers["Location"]
    assert fresh(booking.id).invoice_credited_ore == PRICE
    assert states(booking.id)[(b1, N21)] == "host_cancelled"
