"""Issue 12, "Changing a booking": a guest cancels some bed-nights of a booking, recorded as contract amendments.

The default booking here: a 2-bed listing at 500 kr a bed-night, both beds for the nights of 21 and 22 June
(4 lines, 2 000 kr), invoice unless a test pays by card at localstripe. The season's contract terms: free
cancellation up to and including 21 April, 50 % back after.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import stripe
from sqlalchemy import func, select, text

from app.extensions import db
from app.models import Amendment, BedNight, Booking, OutboxEmail, Refund, User, WaitlistEntry
from app.services import booking as booking_service
from app.services import cancellations, rooming, seasons, waitlist
from app.services.base import Actor
from app.services.contracts import digest
from app.services.errors import DomainError
from app.services.ledger import current_value_ore, guest_cancellation_ore, host_cancellation_ore, host_share_ore
from tests.helpers import NOW, PASSWORD, ROUNDS, YEAR, csrf_from, signed_in
from tests.live_server import RaceWorld, race_json
from tests.pause import interleave

STOCKHOLM = ZoneInfo("Europe/Stockholm")
N21, N22 = date(YEAR, 6, 21), date(YEAR, 6, 22)
PRICE = 50000
TOTAL = 4 * PRICE
# The contract's free-cancellation date is 21 April: its last minute in Visby (still 21:59 UTC) is free, the
# first minute of the next day is late.
FREE_LAST = datetime(YEAR, 4, 21, 23, 59, tzinfo=STOCKHOLM)
LATE_FIRST = datetime(YEAR, 4, 22, 0, 1, tzinfo=STOCKHOLM)
T0 = NOW + timedelta(hours=1)


@pytest.fixture
def world(make_listing, make_user, make_delegation):
    """A 2-bed listing and its coordinator's delegation (2 members); `book()` books both beds, 21-23 June."""
    listing = make_listing(beds=2, price_ore=PRICE)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    bed_ids = [bed.id for bed in listing.beds()]
    actor = Actor(coordinator.id, "coordinator")

    def book(method="invoice", beds=None, delegation_id=None, who=None, check_in=N21, check_out=date(YEAR, 6, 23)):
        return booking_service.create_booking(
            who or actor, delegation_id=delegation_id or delegation.id, bed_ids=beds or bed_ids, check_in=check_in,
            check_out=check_out, accept_contract=True, payment_method=method)

    return {"listing": listing, "coordinator": coordinator, "actor": actor, "delegation": delegation,
            "bed_ids": bed_ids, "host_id": listing.host_id, "book": book,
            "members": [m.id for m in delegation.members]}


def line(bed_id: int, night: date) -> dict:
    return {"bed_id": bed_id, "night": night.isoformat()}


def states(booking_id: int) -> dict[tuple[int, date], str]:
    db.session.expire_all()
    return {(b, n): s for b, n, s in db.session.execute(
        select(BedNight.bed_id, BedNight.night, BedNight.state).where(BedNight.booking_id == booking_id))}


def fresh(booking_id: int) -> Booking:
    db.session.expire_all()
    return db.session.get(Booking, booking_id)


def paid_in_full(booking: Booking) -> Booking:
    """The organisation pays what is still due on the invoice (issue 16: the host earns invoice money only once it
    is received); the booking, fresh."""
    from app.services import invoices
    due = booking.total_ore - booking.invoice_credited_ore
    invoices.record_payment(Actor.system(), booking.invoice_number, due, date(YEAR, 3, 1), source="bgmax",
                            bank_reference=f"test:{booking.id}", now=datetime(YEAR, 3, 1, 12, tzinfo=UTC))
    return fresh(booking.id)


def amendments(booking_id: int) -> list[Amendment]:
    db.session.expire_all()
    return list(db.session.scalars(select(Amendment).where(Amendment.booking_id == booking_id)
                                   .order_by(Amendment.seq)))


def paid_card_booking(world, api_as) -> Booking:
    booking = world["book"]("card")
    paid = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/payment",
                                             json={"payment_method_id": "pm_card_visa"}).get_json()
    assert paid["status"] == "succeeded", paid
    booking = fresh(booking.id)
    assert booking.status == "confirmed"
    return booking


def stripe_refunded(booking_id: int) -> int:
    from app.models import Payment
    intent = db.session.scalar(select(Payment.stripe_payment_intent_id).where(Payment.booking_id == booking_id))
    return sum(r.amount for r in stripe.Refund.list(payment_intent=intent).data)


# ---------------------------------------------------------------------------------------------
# Money: exactly the contract's terms for the cancelled lines, at the boundary dates
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("when,back", [(FREE_LAST, PRICE), (LATE_FIRST, PRICE // 2)], ids=["free-day", "day-after"])
def test_invoice_partial_cancel_credits_the_contract_share_at_the_boundary(world, when, back):
    booking = world["book"]()
    done = cancellations.cancel_lines(world["actor"], booking.id, [(world["bed_ids"][0], N21)], now=when)
    print("invoice partial at", when.isoformat(), "->", done.refund_ore, done.invoice_credit_ore,
          done.amendment.number)
    assert (done.booking.status, done.refund_ore, done.invoice_credit_ore) == ("confirmed", 0, back)
    after = fresh(booking.id)
    assert (after.status, after.refund_ore, after.invoice_credited_ore) == ("confirmed", 0, back)
    assert after.total_ore == TOTAL
    assert current_value_ore(after) == TOTAL - PRICE  # the contract's total stands; the current value is less
    assert host_share_ore(after) == 0  # nothing received on the invoice yet
    assert host_share_ore(paid_in_full(after)) == TOTAL - back  # the host keeps the late share
    assert db.session.scalar(select(func.count(Refund.id)).where(Refund.booking_id == booking.id)) == 0


@pytest.mark.parametrize("when,back", [(FREE_LAST, 2 * PRICE), (LATE_FIRST, PRICE)], ids=["free-day", "day-after"])
def test_card_partial_cancel_refunds_the_contract_share_at_the_boundary(world, api_as, stripe_app,
                                                                         no_stripe_webhooks, when, back):
    booking = paid_card_booking(world, api_as)
    done = cancellations.cancel_lines(world["actor"], booking.id, [(world["bed_ids"][0], N21),
                                                                   (world["bed_ids"][1], N22)], now=when)
    refunds = db.session.scalars(select(Refund).where(Refund.booking_id == booking.id)).all()
    print("card partial at", when.isoformat(), "->", done.refund_ore, [(r.amount_ore, r.status) for r in refunds])
    assert (done.booking.status, done.refund_ore, done.invoice_credit_ore) == ("confirmed", back, 0)
    assert [(r.amount_ore, r.status, r.reason) for r in refunds] == [(back, "succeeded", "guest_partial_cancellation")]
    assert stripe_refunded(booking.id) == back
    after = fresh(booking.id)
    assert (after.refund_ore, after.total_ore) == (back, TOTAL)
    assert host_share_ore(after) == TOTAL - back


def test_the_contracts_terms_decide_not_a_later_change_of_the_season(world, admin_actor):
    booking = world["book"]()
    seasons.update_season(admin_actor, YEAR, {"free_cancellation_until": date(YEAR, 6, 1),
                                              "late_cancellation_refund_pct": 80})
    done = cancellations.cancel_lines(world["actor"], booking.id, [(world["bed_ids"][0], N21)], now=LATE_FIRST)
    assert done.invoice_credit_ore == PRICE // 2  # the contract says 21 April and 50 %
    assert guest_cancellation_ore(fresh(booking.id), LATE_FIRST.date()) == (0, 3 * PRICE // 2)


# ---------------------------------------------------------------------------------------------
# Later cancellations refund only what remains
# ---------------------------------------------------------------------------------------------


def test_invoice_partial_then_full_cancel_credits_only_the_rest(world, api_as):
    booking = world["book"]()
    cancellations.cancel_lines(world["actor"], booking.id, [(world["bed_ids"][0], N21)], now=LATE_FIRST)
    assert guest_cancellation_ore(fresh(booking.id), LATE_FIRST.date()) == (0, 3 * PRICE // 2)
    done = cancellations.cancel_lines(world["actor"], booking.id, None, now=LATE_FIRST)
    after = fresh(booking.id)
    print("after partial and full:", after.status, after.invoice_credited_ore,
          [a.number for a in amendments(booking.id)])
    assert (done.invoice_credit_ore, len(done.lines)) == (3 * PRICE // 2, 3)
    assert (after.status, after.invoice_credited_ore, after.refund_ore) == ("cancelled_by_guest", TOTAL // 2, 0)
    assert host_share_ore(paid_in_full(after)) == TOTAL // 2  # exactly what one late cancellation of everything leaves
    assert set(states(booking.id).values()) == {"released"}
    # The full cancellation of an amended contract closes its series: A2 holds the remaining three bed-nights.
    contract = after.contract
    assert [(a.number, a.lines_ore, a.invoice_credit_ore) for a in amendments(booking.id)] == [
        (f"{contract.number}-A1", PRICE, PRICE // 2), (f"{contract.number}-A2", 3 * PRICE, 3 * PRICE // 2)]
    again = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/cancel")
    assert (again.status_code, again.get_json()["code"]) == (409, "not_cancellable")
    assert fresh(booking.id).invoice_credited_ore == TOTAL // 2  # nothing more


def test_card_partial_free_then_full_late_refunds_only_the_share_of_the_rest(world, api_as, stripe_app,
                                                                              no_stripe_webhooks):
    booking = paid_card_booking(world, api_as)
    cancellations.cancel_lines(world["actor"], booking.id, [(world["bed_ids"][0], N21)], now=FREE_LAST)
    done = cancellations.cancel_lines(world["actor"], booking.id, None, now=LATE_FIRST)
    after = fresh(booking.id)
    print("card: refunds", done.refund_ore, after.refund_ore, "at Stripe", stripe_refunded(booking.id))
    assert done.refund_ore == 3 * PRICE // 2  # half of what remained, not half of what was paid
    assert after.refund_ore == PRICE + 3 * PRICE // 2 == stripe_refunded(booking.id)
    assert host_share_ore(after) == 3 * PRICE // 2


def test_card_partial_late_then_full_late_refunds_half_of_everything_once(world, api_as, stripe_app,
                                                                           no_stripe_webhooks):
    booking = paid_card_booking(world, api_as)
    cancellations.cancel_lines(world["actor"], booking.id, [(world["bed_ids"][0], N21)], now=LATE_FIRST)
    assert guest_cancellation_ore(fresh(booking.id), LATE_FIRST.date()) == (3 * PRICE // 2, 0)
    cancellations.cancel_by_guest(world["actor"], booking.id, now=LATE_FIRST)
    after = fresh(booking.id)
    assert after.refund_ore == TOTAL // 2 == stripe_refunded(booking.id)
    assert host_share_ore(after) == TOTAL // 2


def test_invoice_partial_then_host_cancel_credits_all_that_is_still_due(world):
    booking = world["book"]()
    cancellations.cancel_lines(world["actor"], booking.id, [(world["bed_ids"][0], N21)], now=LATE_FIRST)
    assert host_cancellation_ore(fresh(booking.id)) == (0, TOTAL - PRICE // 2)
    cancellations.cancel_by_host(Actor(world["host_id"], "host"), booking.id, "Vattenskada", now=LATE_FIRST)
    after = fresh(booking.id)
    assert (after.status, after.invoice_credited_ore, after.refund_ore) == ("cancelled_by_host", TOTAL, 0)
    assert host_share_ore(after) == 0
    assert set(states(booking.id).values()) == {"released", "host_cancelled"}
    assert states(booking.id)[(world["bed_ids"][0], N21)] == "released"  # cancelled by the guest before: free


def test_card_partial_then_host_cancel_refunds_everything_still_paid(world, api_as, stripe_app, no_stripe_webhooks):
    booking = paid_card_booking(world, api_as)
    cancellations.cancel_lines(world["actor"], booking.id, [(world["bed_ids"][0], N21)], now=LATE_FIRST)
    assert host_cancellation_ore(fresh(booking.id)) == (TOTAL - PRICE // 2, 0)
    cancellations.cancel_by_host(Actor(world["host_id"], "host"), booking.id, "Vattenskada", now=LATE_FIRST)
    after = fresh(booking.id)
    assert after.refund_ore == TOTAL == stripe_refunded(booking.id)  # a breach: all the money back, once
    assert host_share_ore(after) == 0


def test_host_share_and_payout_after_partial_cancellations(world):
    from app.models import Payout
    from app.services import payouts
    booking = world["book"]()
    cancellations.cancel_lines(world["actor"], booking.id, [(world["bed_ids"][0], N21)], now=FREE_LAST)
    cancellations.cancel_lines(world["actor"], booking.id, [(world["bed_ids"][1], N22)], now=LATE_FIRST)
    after = paid_in_full(fresh(booking.id))
    assert host_share_ore(after) == TOTAL - PRICE - PRICE // 2
    payouts.sync_payouts(now=datetime(YEAR, 6, 23, 12, tzinfo=UTC))
    payout = db.session.scalar(select(Payout).where(Payout.booking_id == booking.id))
    assert payout.amount_ore == TOTAL - PRICE - PRICE // 2


# ---------------------------------------------------------------------------------------------
# The contract never changes: its hash and verification stand, the amendments are appended
# ---------------------------------------------------------------------------------------------


def test_contract_hash_and_verification_stand_and_amendments_are_listed(world, api_as, client):
    booking = world["book"]()
    contract = booking.contract
    number, sha, snapshot = contract.number, contract.sha256, contract.snapshot
    verify = f"/api/v1/contracts/verify?number={number}&sha256={sha}"
    assert client.get(verify).get_json() == {"valid": True, "status": "confirmed", "amended": False}
    coord = api_as(world["coordinator"])
    response = coord.post(f"/bookings/{booking.id}/cancel", {"lines": [line(world["bed_ids"][1], N22),
                                                                       line(world["bed_ids"][0], N22)]})
    body = response.get_json()
    print("partial cancel answered", response.status_code, body)
    assert response.status_code == 200
    assert (body["status"], body["refund_ore"], body["invoice_credit_ore"]) == ("confirmed", 0, 2 * PRICE)
    assert body["cancelled_lines"] == [{"bed_id": b, "night": N22.isoformat(), "price_ore": PRICE}
                                       for b in sorted(world["bed_ids"])]
    assert client.get(verify).get_json() == {"valid": True, "status": "confirmed", "amended": True}
    db.session.expire_all()
    contract = fresh(booking.id).contract
    assert (contract.sha256, contract.snapshot, digest(contract.snapshot)) == (sha, snapshot, sha)
    got = coord.get(f"/contracts/{contract.id}").get_json()
    assert got["sha256"] == sha and len(got["lines"]) == 4 and got["total_ore"] == TOTAL  # the contract as formed
    [amendment] = got["amendments"]
    assert amendment["number"] == f"{number}-A1" and amendment["at"]
    assert amendment["refund_ore"] == 0 and amendment["invoice_credit_ore"] == 2 * PRICE
    assert [(x["bed_id"], x["night"], x["price_ore"]) for x in amendment["lines"]] == [
        (b, N22.isoformat(), PRICE) for b in sorted(world["bed_ids"])]
    host_view = api_as(db.session.get(User, world["host_id"])).get(f"/contracts/{contract.id}").get_json()
    assert host_view["amendments"] == got["amendments"]
    shown = coord.get(f"/bookings/{booking.id}").get_json()
    assert sorted(x["state"] for x in shown["lines"]) == ["booked", "booked", "released", "released"]
    assert shown["total_ore"] == TOTAL and shown["invoice"]["credited_ore"] == 2 * PRICE
    page = client.get(f"/contracts/verify?number={number}&sha256={sha}").get_data(as_text=True)
    assert 'class="amended"' in page


def test_contract_pdf_lists_the_amendment(world, api_as):
    booking = world["book"]()
    cancellations.cancel_lines(world["actor"], booking.id, [(world["bed_ids"][0], N21)], now=T0)
    number = fresh(booking.id).contract.number
    pdf = api_as(world["coordinator"]).get(f"/contracts/{fresh(booking.id).contract.id}/pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert f"{number}-A1".encode() in pdf.data
    plain = world["book"](beds=[world["bed_ids"][0]], check_in=date(YEAR, 6, 23), check_out=date(YEAR, 6, 24))
    unamended = api_as(world["coordinator"]).get(f"/contracts/{plain.contract.id}/pdf").data
    assert b"-A1" not in unamended


def test_amendments_are_append_only_in_the_database(world, backend):
    booking = world["book"]()
    cancellations.cancel_lines(world["actor"], booking.id, [(world["bed_ids"][0], N21)], now=T0)
    [amendment] = amendments(booking.id)
    refused = ["UPDATE amendments SET refund_ore = 1, invoice_credit_ore = 0 WHERE id = :id",
               "DELETE FROM amendments WHERE id = :id"]
    # TRUNCATE (PostgreSQL) is refused like the other append-only tables': tests/test_deployment.py
    for statement in refused:
        with pytest.raises(Exception, match="amendments"):
            db.session.execute(text(statement), {"id": amendment.id})
            db.session.commit()
        db.session.rollback()
    [still] = amendments(booking.id)
    assert (still.invoice_credit_ore, still.number) == (PRICE, amendment.number)
    # The series is unique per contract, even for a writer that skips the service.
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        db.session.add(Amendment(contract_id=still.contract_id, booking_id=booking.id, seq=1, number="X-A1",
                                 kind="guest_cancellation", lines=[], lines_ore=1, refund_ore=0,
                                 invoice_credit_ore=0, at=T0))
        db.session.commit()
    db.session.rollback()


# ---------------------------------------------------------------------------------------------
# The freed bed-nights are bookable again; rooming and the waiting list follow
# ---------------------------------------------------------------------------------------------


def test_freed_bed_nights_are_bookable_again_by_another_delegation(world, make_user, make_delegation, api_as):
    booking = world["book"]()
    bed = world["bed_ids"][0]
    cancellations.cancel_lines(world["actor"], booking.id, [(bed, N21)], now=T0)
    assert states(booking.id)[(bed, N21)] == "released"
    free = api_as().get(f"/availability?year={YEAR}&check_in={N21}&check_out={N22}&beds=1").get_json()
    assert [b["bed_id"] for r in free["results"] for b in r["free_beds"]] == [bed]
    other = make_user("coordinator")
    taken = world["book"](beds=[bed], delegation_id=make_delegation(other).id, who=Actor(other.id, "coordinator"),
                          check_in=N21, check_out=N22)
    assert taken.status == "confirmed"
    still_taken = make_user("coordinator")
    with pytest.raises(DomainError) as refused:  # the other bed-nights are still the first booking's
        world["book"](beds=[bed], delegation_id=make_delegation(still_taken).id,
                      who=Actor(still_taken.id, "coordinator"), check_in=N22, check_out=date(YEAR, 6, 23))
    assert refused.value.code == "bed_nights_taken"


def test_rooming_of_cancelled_bed_nights_goes_away(world):
    booking = world["book"]()
    b1, b2 = world["bed_ids"]
    m1, m2 = world["members"]
    rooming.assign_rooming(world["actor"], booking.id, [{"bed_id": b1, "member_id": m1},
                                                        {"bed_id": b2, "member_id": m2}])
    cancellations.cancel_lines(world["actor"], booking.id, [(b1, N21)], now=T0)
    db.session.expire_all()
    members = dict(((b, n), m) for b, n, m in db.session.execute(
        select(BedNight.bed_id, BedNight.night, BedNight.member_id).where(BedNight.booking_id == booking.id)))
    assert members == {(b1, N21): None, (b1, N22): m1, (b2, N21): m2, (b2, N22): m2}
    cancellations.cancel_lines(world["actor"], booking.id, [(b1, N22)], now=T0)
    with pytest.raises(DomainError) as gone:  # a bed with no night left is no longer the booking's
        rooming.assign_rooming(world["actor"], booking.id, [{"bed_id": b1, "member_id": m1}])
    assert gone.value.code == "invalid"
    assert [row.member_id for row in rooming.rooming_rows(world["delegation"].id)] == [m2, m2]


def test_a_waiting_delegation_is_offered_the_freed_beds(world, make_user, make_delegation):
    booking = world["book"]()
    waiting = make_user("coordinator")
    entry = waitlist.join(Actor(waiting.id, "coordinator"), delegation_id=make_delegation(waiting).id, year=YEAR,
                          check_in=N21, check_out=date(YEAR, 6, 23), beds=1)
    assert entry.status == "waiting"
    cancellations.cancel_lines(world["actor"], booking.id, [(world["bed_ids"][1], N21), (world["bed_ids"][1], N22)],
                               now=T0)
    db.session.expire_all()
    entry = db.session.get(WaitlistEntry, entry.id)
    assert entry.status == "offered"
    offer = db.session.get(Booking, entry.offer_booking_id)
    assert {line.bed_id for line in offer.lines} == {world["bed_ids"][1]}
    assert fresh(booking.id).status == "confirmed"


def test_the_host_and_the_coordinator_get_the_amendment_by_mail(world):
    booking = world["book"]()
    done = cancellations.cancel_lines(world["actor"], booking.id, [(world["bed_ids"][0], N21)], now=T0)
    mails = db.session.scalars(select(OutboxEmail).where(OutboxEmail.subject.contains(done.amendment.number))).all()
    host = db.session.get(User, world["host_id"])
    assert sorted(m.to_address for m in mails) == sorted([host.email, world["coordinator"].email])
    assert all("500" in m.body_text for m in mails)


# ---------------------------------------------------------------------------------------------
# Refusals, each saying what to do
# ---------------------------------------------------------------------------------------------


def test_refusals_through_the_api(world, api_as, make_user, make_delegation):
    booking = world["book"]()
    b1, b2 = world["bed_ids"]
    other_coordinator = make_user("coordinator")
    others = world["book"](beds=[b1], delegation_id=make_delegation(other_coordinator).id,
                           who=Actor(other_coordinator.id, "coordinator"), check_in=date(YEAR, 6, 23),
                           check_out=date(YEAR, 6, 24))
    coord = api_as(world["coordinator"])
    url = f"/bookings/{booking.id}/cancel"
    assert coord.post(url, {"lines": [line(b1, N21)]}).status_code == 200
    cases = {
        "empty": [],
        "unknown bed": [line(999999, N21)],
        "unknown night": [line(b1, date(YEAR, 6, 24))],
        "other booking's line": [line(b1, date(YEAR, 6, 23))],
        "already cancelled": [line(b1, N21), line(b2, N21)],
        "twice": [line(b2, N21), line(b2, N21)],
    }
    for name, lines in cases.items():
        response = coord.post(url, {"lines": lines})
        body = response.get_json()
        print(name, "->", response.status_code, body.get("errors"))
        assert (response.status_code, body["code"]) == (422, "invalid"), name
        assert body["errors"]["lines"], name
    errors = coord.post(url, {"lines": [line(b1, N21)]}).get_json()["errors"]["lines"]
    assert "redan avbokad" in errors[0] and "ta bort den ur listan" in errors[0]
    for malformed in ({"lines": "all"}, {"lines": [{"bed_id": "1", "night": "2027-06-21"}]},
                      {"lines": [{"bed_id": b1, "night": "21/6"}]}, [1, 2]):
        assert coord.post(url, malformed).status_code == 422, malformed
    # Not its coordinator: a host is refused (403), another coordinator does not see it (404).
    host = api_as(db.session.get(User, world["host_id"]))
    assert host.post(url, {"lines": [line(b2, N21)]}).status_code == 403
    assert api_as(other_coordinator).post(url, {"lines": [line(b2, N21)]}).status_code == 404
    assert set(states(booking.id).values()) == {"booked", "released"} and len(amendments(booking.id)) == 1
    assert states(others.id) == {(b1, date(YEAR, 6, 23)): "booked"}
    # A cancelled booking: 409 not_cancellable, whatever lines are named.
    assert coord.post(url).get_json()["status"] == "cancelled_by_guest"
    refused = coord.post(url, {"lines": [line(b2, N21)]})
    assert (refused.status_code, refused.get_json()["code"]) == (409, "not_cancellable")


def test_refusals_in_the_service(world, make_user):
    booking = world["book"]()
    b1, _b2 = world["bed_ids"]
    with pytest.raises(DomainError) as not_coordinator:
        cancellations.cancel_lines(Actor(world["host_id"], "host"), booking.id, [(b1, N21)], now=T0)
    assert not_coordinator.value.status == 403
    with pytest.raises(DomainError) as past:  # tonight may still go, last night may not
        cancellations.cancel_lines(world["actor"], booking.id, [(b1, N21)],
                                   now=datetime(YEAR, 6, 22, 10, tzinfo=STOCKHOLM))
    assert past.value.code == "night_in_past"
    hold = world["book"]("card", check_in=date(YEAR, 6, 23), check_out=date(YEAR, 6, 25))
    assert hold.status == "awaiting_payment"
    with pytest.raises(DomainError) as unpaid:
        cancellations.cancel_lines(world["actor"], hold.id, [(b1, date(YEAR, 6, 23))], now=T0)
    assert (unpaid.value.status, unpaid.value.code) == (409, "not_cancellable")
    every = [(b, n) for b in world["bed_ids"] for n in (date(YEAR, 6, 23), date(YEAR, 6, 24))]
    whole = cancellations.cancel_lines(world["actor"], hold.id, every, now=T0)  # all its lines: the full cancel
    assert (whole.booking.status, whole.refund_ore, whole.amendment) == ("cancelled_by_guest", 0, None)
    assert amendments(hold.id) == []


def test_naming_every_remaining_line_is_the_full_cancellation(world, api_as):
    booking = world["book"]()
    every = [line(b, n) for b in world["bed_ids"] for n in (N21, N22)]
    body = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/cancel", {"lines": every}).get_json()
    assert (body["status"], body["refund_ore"], body["invoice_credit_ore"], body["amendment"]) == (
        "cancelled_by_guest", 0, TOTAL, None)
    assert len(body["cancelled_lines"]) == 4
    assert amendments(booking.id) == []  # cancelled whole at once: the status says it, no amendment
    sha = booking.contract.sha256
    verified = api_as().get(f"/contracts/verify?number={booking.contract.number}&sha256={sha}").get_json()
    assert verified == {"valid": True, "status": "cancelled_by_guest", "amended": False}


def test_old_full_cancel_answer_still_works(world, api_as):
    booking = world["book"]()
    response = api_as(world["coordinator"]).post(f"/bookings/{booking.id}/cancel")
    body = response.get_json()
    assert response.status_code == 200
    assert {k: body[k] for k in ("id", "status", "refund_ore")} == {
        "id": booking.id, "status": "cancelled_by_guest", "refund_ore": 0}


# ---------------------------------------------------------------------------------------------
# The pages: tick bed-nights, see the amendment
# ---------------------------------------------------------------------------------------------


def test_coordinator_ticks_two_bed_nights_and_sees_the_amendment(app, world):
    booking = world["book"]()
    b1, b2 = world["bed_ids"]
    browser = signed_in(app, world["coordinator"])
    page = browser.get(f"/coordinator/bookings/{booking.id}/cancel")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for b in (b1, b2):
        for n in (N21, N22):
            assert f'value="{b}:{n.isoformat()}"' in html
    assert html.count('type="checkbox" name="lines"') == 4
    assert "Rum 1 / Säng 1 – 500 kr" in html and "krediteras i dag: 500 kr" in html
    assert '<dd class="credit"><strong>2\u00a0000 kr</strong></dd>' in html
    token = csrf_from(page)
    nothing = browser.post(f"/coordinator/bookings/{booking.id}/cancel", data={"csrf_token": token, "part": "lines"})
    assert nothing.status_code == 422 and "Välj minst en bäddnatt" in nothing.get_data(as_text=True)
    response = browser.post(f"/coordinator/bookings/{booking.id}/cancel", data={
        "csrf_token": token, "part": "lines", "lines": [f"{b1}:{N21.isoformat()}", f"{b2}:{N22.isoformat()}"]})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/coordinator/bookings/{booking.id}")
    number = f"{fresh(booking.id).contract.number}-A1"
    shown = browser.get(response.headers["Location"]).get_data(as_text=True)
    assert number in shown and "Ändringar av avtalet" in shown
    assert "Ändring " + number in shown  # the flash
    assert shown.count('<span class="badge">Avbokad</span>') == 2
    assert fresh(booking.id).status == "confirmed"
    assert states(booking.id)[(b1, N21)] == states(booking.id)[(b2, N22)] == "released"
    again = browser.get(f"/coordinator/bookings/{booking.id}/cancel").get_data(as_text=True)
    assert again.count('type="checkbox" name="lines"') == 2
    stale = browser.post(f"/coordinator/bookings/{booking.id}/cancel", data={
        "csrf_token": token, "part": "lines", "lines": [f"{b1}:{N21.isoformat()}"]})
    assert stale.status_code == 422 and "redan avbokad" in stale.get_data(as_text=True)
    host = signed_in(app, db.session.get(User, world["host_id"]))
    assert number in host.get(f"/host/bookings/{booking.id}").get_data(as_text=True)
    everything = browser.post(f"/coordinator/bookings/{booking.id}/cancel", data={"csrf_token": token})
    assert everything.status_code == 302 and fresh(booking.id).status == "cancelled_by_guest"
    assert [a.seq for a in amendments(booking.id)] == [1, 2]


# ---------------------------------------------------------------------------------------------
# Two partial cancellations of overlapping bed-nights: one wins, nothing is refunded twice
# ---------------------------------------------------------------------------------------------


def _frees_bed_nights(sql: str) -> bool:
    return sql.startswith("UPDATE bed_nights SET state")


@pytest.mark.parametrize("lock", ["booking lock", "row count only"])
def test_overlapping_partial_cancellations_interleaved_one_wins(app, world, monkeypatch, lock):
    """Side A is paused right after it freed its bed-nights (before its commit); B runs until it waits on a lock;
    then A goes. With the booking lock B waits for it; without it (the lock patched out) B's own conditional
    UPDATE of the bed-nights is the backstop. Either way B answers state_changed and nothing is doubled."""
    booking = world["book"]()
    b1, b2 = world["bed_ids"]
    booking_id, actor = booking.id, world["actor"]
    if lock == "row count only":
        monkeypatch.setattr(cancellations, "locked_booking", lambda booking_id: db.session.get(Booking, booking_id))
    sides = {
        "a": lambda: cancellations.cancel_lines(actor, booking_id, [(b1, N21), (b2, N21)], now=LATE_FIRST).refund_ore,
        "b": lambda: cancellations.cancel_lines(actor, booking_id, [(b2, N21), (b2, N22)], now=LATE_FIRST).refund_ore,
    }
    results, errors, how = interleave(app, ("a", sides["a"]), ("b", sides["b"]), _frees_bed_nights)
    lost = {side: getattr(error, "code", repr(error)) for side, error in errors}
    after = fresh(booking_id)
    facts = f"{how} ({lock}): results {results}, lost {lost}, credited {after.invoice_credited_ore}"
    print(facts)
    assert list(results) == ["a"] and lost == {"b": "state_changed"}, facts
    assert after.invoice_credited_ore == PRICE == sum(a.invoice_credit_ore for a in amendments(booking_id)), facts
    assert [s for k, s in sorted(states(booking_id).items())] == ["released", "booked", "released", "booked"], facts


def _race_booking(race_world: RaceWorld) -> tuple[int, list[int]]:
    """A fresh approved host's 3-bed listing, booked (invoice) by the race coordinator for 21-23 June."""
    from app.models import Season
    from app.services import accounts, listings, pricing, vetting

    n = race_world.next()
    with race_world.app.app_context():
        host = accounts.register_user(f"amend{n}@example.se", PASSWORD, f"Värd {n}", "host")
        host_actor = Actor(host.id, "host")
        vetting.submit_profile(host_actor, legal_name=f"Värd {n} AB", phone="+46 498 123 456",
                               address="Strandgatan 1", postal_code="621 56", right_to_rent=True)
        vetting.decide(Actor(race_world.admin_id, "admin"), host.id, "approve", "checked")
        listing = listings.create_listing(host_actor, title=f"Huset {n}", description="Sängar.",
                                          address="Strandgatan 1", postal_code="621 56", walking_minutes=5)
        room = listings.add_room(host_actor, listing.id, "Rum 1")
        bed_ids = []
        for b in range(3):
            bed = listings.add_bed(host_actor, room.id, f"Säng {b + 1}", "single")
            pricing.set_price(host_actor, bed.id, YEAR, PRICE)
            bed_ids.append(bed.id)
        season = db.session.scalars(select(Season).where(Season.year == YEAR)).one()
        listings.publish(host_actor, listing.id, season.terms_version)
        booked = booking_service.create_booking(
            Actor(race_world.coordinator_id, "coordinator"), delegation_id=race_world.delegation_id,
            bed_ids=bed_ids, check_in=N21, check_out=date(YEAR, 6, 23), accept_contract=True,
            payment_method="invoice")
        booking_id = booked.id
        db.session.remove()
    return booking_id, bed_ids


@pytest.mark.serial
def test_overlapping_partial_cancellations_raced_over_http(race_world):
    """Two partial cancellations of one booking, sharing one bed-night, released together by a barrier against
    gunicorn with 4 workers on PostgreSQL: exactly one cancels its bed-nights, the other is refused (409
    state_changed, or 422 when the winner had committed before it looked), and nothing is credited twice."""
    outcomes = []
    for _round in range(ROUNDS):
        booking_id, (b1, b2, b3) = _race_booking(race_world)
        url = f"{race_world.server.base_url}/api/v1/bookings/{booking_id}/cancel"
        sets = [[line(b1, N21), line(b2, N21)], [line(b2, N21), line(b3, N21)]]
        answers = race_json([("POST", url, race_world.coordinator_token, {"lines": lines}) for lines in sets])
        codes = sorted(status for status, _body in answers)
        winners = [i for i, (status, _body) in enumerate(answers) if status == 200]
        released = sorted((bed, night.isoformat()) for bed, night in race_world.rows(
            "SELECT bed_id, night FROM bed_nights WHERE booking_id = :id AND state = 'released'", id=booking_id))
        credited, status = race_world.rows("SELECT invoice_credited_ore, status FROM bookings WHERE id = :id",
                                           id=booking_id)[0]
        amended = race_world.rows("SELECT count(*), coalesce(sum(invoice_credit_ore), 0) FROM amendments "
                                  "WHERE booking_id = :id", id=booking_id)[0]
        facts = f"answers {answers}, released {released}, credited {credited}, amendments {amended}"
        print(facts)
        assert len(winners) == 1, facts
        loser = answers[1 - winners[0]]
        assert loser[0] in (409, 422) and loser[1]["code"] in ("state_changed", "invalid"), facts
        assert released == sorted((x["bed_id"], x["night"]) for x in sets[winners[0]]), facts
        assert (credited, status) == (2 * PRICE, "confirmed") and tuple(amended) == (1, 2 * PRICE), facts
        outcomes.append(codes)
    print("outcomes", outcomes)
