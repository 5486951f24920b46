"""Issue 15, the allocation round (API.md "The allocation round (fair opening)"): the round's fields, requests, the
draw and its result, through the API, the pages and the command line; the draw's side effects (orders, contracts,
e-mail, audit, waiting list); exactly once and an interrupted draw completed by the next run.

The draw's optimality and fairness are tests/test_allocation_properties.py; two workers racing it,
tests/test_allocation_race.py.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import date, timedelta
from itertools import count

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.extensions import db
from app.models import (
    AllocationRequest,
    AllocationRound,
    AuditEntry,
    BedNight,
    Booking,
    Contract,
    Order,
    OutboxEmail,
    Season,
    WaitlistEntry,
)
from app.services import allocation, lottery, seasons
from app.services.base import Actor
from app.services.errors import DomainError
from tests.draw_model import Decision, ModelBed, Want, check_draw
from tests.helpers import NOW, YEAR, csrf_from, season_form, signed_in

OPENS, DRAWS, BOOKING_OPENS = NOW - timedelta(hours=1), NOW + timedelta(hours=1), NOW + timedelta(hours=2)
AFTER = DRAWS + timedelta(minutes=1)
CHECK_IN, CHECK_OUT = date(YEAR, 6, 21), date(YEAR, 6, 23)
REF = re.compile(r"^[A-Za-z0-9_-]{16,}$")


@pytest.fixture
def world(make_season, make_listing):
    """A season whose requests are open now (its draw in an hour, booking in two); listings A (3 beds, 500 kr) and
    B (2 beds, 400 kr)."""
    season = make_season(requests_open_at=OPENS, allocation_at=DRAWS, bookings_open_at=BOOKING_OPENS,
                         allocation_payment_hours=24)
    return {"season": season, "a": make_listing(beds=3, price_ore=50000, season=season, title="A"),
            "b": make_listing(beds=2, price_ore=40000, season=season, title="B")}


@pytest.fixture
def requester(make_user, make_delegation):
    """requester(**wish) -> (coordinator, delegation, request) made through the service at `now` (default NOW)."""

    def make(organisation_number=None, coordinator=None, now=NOW, year=YEAR, **wish):
        coordinator = coordinator or make_user("coordinator")
        delegation = make_delegation(coordinator, members=0, organisation_number=organisation_number)
        wish.setdefault("check_in", CHECK_IN)
        wish.setdefault("check_out", CHECK_OUT)
        wish.setdefault("beds", 2)
        wish.setdefault("payment_method", "invoice")
        wish.setdefault("accept_contract", True)
        request = allocation.submit_request(Actor(coordinator.id, "coordinator"), year, delegation_id=delegation.id,
                                            now=now, **wish)
        return coordinator, delegation, request

    return make


def body(delegation, **extra):
    return {"delegation_id": delegation.id, "check_in": CHECK_IN.isoformat(), "check_out": CHECK_OUT.isoformat(),
            "beds": 2, "payment_method": "invoice", "accept_contract": True, **extra}


def tally() -> tuple:
    """What the draw writes, counted: orders, bookings, contracts, occupied bed-nights, waiting entries, mail, audit."""
    db.session.rollback()
    return tuple(db.session.scalar(query) for query in (
        select(func.count(Order.id)), select(func.count(Booking.id)), select(func.count(Contract.id)),
        select(func.count(BedNight.id)).where(BedNight.state.in_(("held", "booked"))),
        select(func.count(WaitlistEntry.id)), select(func.count(OutboxEmail.id)), select(func.count(AuditEntry.id))))


def decisions_of(season_id: int) -> tuple[dict[int, ModelBed], list[Decision]]:
    """The draw as tests/draw_model.py sees it: every bed on offer and every ranked request's outcome."""
    from app.models import Bed, BedPrice, Listing, Room
    beds = {bed_id: ModelBed(bed_id, listing_id, price, walking) for bed_id, listing_id, price, walking in
            db.session.execute(select(Bed.id, Room.listing_id, BedPrice.price_ore, Listing.walking_minutes)
                               .join(Room, Room.id == Bed.room_id).join(Listing, Listing.id == Room.listing_id)
                               .join(BedPrice, BedPrice.bed_id == Bed.id).where(BedPrice.season_id == season_id))}
    decisions = []
    for row in db.session.scalars(select(AllocationRequest).where(AllocationRequest.season_id == season_id,
                                                                  AllocationRequest.rank.is_not(None))):
        nights = frozenset(range(row.check_in.toordinal(), row.check_out.toordinal()))
        bed_ids = sorted({line.bed_id for booking in db.session.scalars(
            select(Booking).where(Booking.order_id == row.order_id)) for line in booking.lines}) if row.order_id else []
        decisions.append(Decision(Want(row.rank, row.beds, nights, row.max_listings, row.max_walking_minutes,
                                       row.max_price_ore, tuple(allocation.preferred_ids(row))),
                                  row.status == "allocated", bed_ids))
    return beds, decisions


# ---------------------------------------------------------------------------------------------
# The round and its commitment
# ---------------------------------------------------------------------------------------------


def test_the_commitment_is_public_before_the_first_request_and_the_draw_recomputes_from_what_is_published(
        world, api_as, make_user, make_delegation):
    public = api_as()
    before = public.get(f"/allocation/{YEAR}").get_json()
    assert before["status"] == "open" and before["requests"] == 0 and before["seed"] is None
    assert re.fullmatch(r"[0-9a-f]{64}", before["seed_commitment"])
    made = []
    for _ in range(4):
        coordinator = make_user("coordinator")
        delegation = make_delegation(coordinator, members=0)
        client = api_as(coordinator)
        response = client.post(f"/allocation/{YEAR}/requests", body(delegation))
        assert response.status_code == 201, response.get_json()
        answer = response.get_json()
        assert answer["status"] == "submitted" and REF.match(answer["ref"]) and answer["rank"] is None
        made.append((client, answer))
    assert public.get(f"/allocation/{YEAR}").get_json()["requests"] == 4
    assert public.get(f"/allocation/{YEAR}/result").get_json()["code"] == "not_drawn"

    report = allocation.draw(YEAR, now=AFTER)

    assert report.drawn and report.requests == 4 and report.allocated + report.unallocated == 4
    after = public.get(f"/allocation/{YEAR}").get_json()
    assert after["status"] == "drawn" and after["seed_commitment"] == before["seed_commitment"]
    seed = after["seed"]
    assert hashlib.sha256(seed.encode("ascii")).hexdigest() == before["seed_commitment"]
    result = public.get(f"/allocation/{YEAR}/result").get_json()
    assert (result["seed"], result["seed_commitment"]) == (seed, before["seed_commitment"])
    # From the published seed and refs alone, by hand: the order of SHA-256(seed + ":" + ref), ascending.
    refs = [entry["ref"] for entry in result["draw"]]
    assert refs == sorted(refs, key=lambda ref: hashlib.sha256(f"{seed}:{ref}".encode()).hexdigest())
    assert [entry["rank"] for entry in result["draw"]] == [1, 2, 3, 4]
    assert sorted(refs) == sorted(answer["ref"] for _client, answer in made)
    # Five beds (3 in A, 2 in B), four requests of two: rank 1 takes B (one listing, cheapest), rank 2 two of A's
    # three; the one bed left cannot serve a request of two (all or nothing).
    assert [entry["allocated"] for entry in result["draw"]] == [True, True, False, False]
    for client, answer in made:
        mine = client.get(f"/allocation/{YEAR}/requests/{answer['id']}").get_json()
        published = next(entry for entry in result["draw"] if entry["ref"] == answer["ref"])
        assert mine["rank"] == published["rank"]
        assert mine["status"] == ("allocated" if published["allocated"] else "unallocated")
        assert (mine["order_id"] is not None) == published["allocated"]
        if mine["order_id"]:
            order = client.get(f"/orders/{mine['order_id']}").get_json()
            assert sum(len({line["bed_id"] for line in b["lines"]}) for b in order["bookings"]) == 2


def test_the_seed_is_kept_secret_until_the_draw(world, requester, client, admin_login, api_as):
    coordinator, _delegation, _request = requester()
    seed = db.session.scalar(select(AllocationRound.seed))
    browser = signed_in(client.application, coordinator)
    admin_login()
    places = [client.get(f"/admin/seasons/{YEAR}/edit"), client.get("/admin/audit"),
              browser.get("/coordinator/fordelning/"), api_as().get("/seasons"), api_as().get(f"/allocation/{YEAR}"),
              client.get("/insyn"), client.get(f"/fordelning/{YEAR}")]
    commitment = lottery.commitment(seed)
    for response in places:
        assert response.status_code == 200
        assert seed not in response.get_data(as_text=True)
    assert commitment in client.get("/insyn").get_data(as_text=True)
    assert commitment in client.get(f"/fordelning/{YEAR}").get_data(as_text=True)
    logged = " ".join(f"{e.before} {e.after}" for e in db.session.scalars(select(AuditEntry)))
    assert seed not in logged and commitment in logged

    allocation.draw(YEAR, now=AFTER)

    assert seed in client.get(f"/fordelning/{YEAR}").get_data(as_text=True)
    assert api_as().get(f"/allocation/{YEAR}").get_json()["seed"] == seed
    assert seed in " ".join(f"{e.after}" for e in db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "allocation.drawn")))


def test_a_rounds_commitment_never_changes(world, admin_actor):
    before = allocation.public_round(YEAR, now=NOW)
    seasons.update_season(admin_actor, YEAR, {"requests_open_at": OPENS - timedelta(hours=1)}, now=NOW)
    assert allocation.public_round(YEAR, now=NOW).seed_commitment == before.seed_commitment
    # Removing the round and giving it again keeps the same seed (the one committed to in public).
    seasons.update_season(admin_actor, YEAR, {"requests_open_at": None, "allocation_at": None}, now=NOW)
    with pytest.raises(DomainError) as gone:
        allocation.public_round(YEAR)
    assert gone.value.status == 404
    seasons.update_season(admin_actor, YEAR, {"requests_open_at": OPENS, "allocation_at": DRAWS}, now=NOW)
    assert allocation.public_round(YEAR, now=NOW).seed_commitment == before.seed_commitment
    # The database refuses another seed or commitment, and removing the round.
    for statement in ("UPDATE allocation_rounds SET seed = :other", "UPDATE allocation_rounds SET seed_commitment = "
                      ":other", "DELETE FROM allocation_rounds"):
        with pytest.raises(DBAPIError):
            db.session.execute(text(statement), {"other": "0" * 64})
        db.session.rollback()


@pytest.mark.parametrize(("changes", "field"), [
    ({"requests_open_at": DRAWS}, "allocation_at"),  # requests open at the draw: not before it
    ({"allocation_at": BOOKING_OPENS + timedelta(minutes=1)}, "allocation_at"),  # drawn after booking opens
    ({"requests_open_at": None}, "requests_open_at"),  # one time without the other
    ({"allocation_payment_hours": 0}, "allocation_payment_hours"),
    ({"allocation_payment_hours": 721}, "allocation_payment_hours"),
])
def test_the_rounds_times_are_checked(world, api_as, make_admin, changes, field):
    admin = api_as(make_admin())
    payload = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in changes.items()}
    response = admin.patch(f"/admin/seasons/{YEAR}", payload)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]


def test_a_season_gets_a_round_through_the_api_and_shows_its_fields(api_as, make_admin):
    admin = api_as(make_admin())
    season = {"year": YEAR, "name": "Almedalsveckan", "first_night": f"{YEAR}-06-20", "last_night": f"{YEAR}-06-25",
              "bookings_open_at": BOOKING_OPENS.isoformat(), "price_cap_ore": 90000, "max_increase_pct": 10,
              "strike_limit": 3, "hold_minutes": 15, "free_cancellation_until": f"{YEAR}-04-20",
              "late_cancellation_refund_pct": 50, "requests_open_at": OPENS.isoformat(),
              "allocation_at": DRAWS.isoformat()}
    created = admin.post("/admin/seasons", season)
    assert created.status_code == 201, created.get_json()
    listed = api_as().get("/seasons").get_json()["seasons"][0]
    assert listed["allocation_payment_hours"] == 48 and listed["requests_open_at"] and listed["allocation_at"]
    assert api_as().get(f"/allocation/{YEAR}").get_json()["status"] == "open"
    assert api_as().get(f"/allocation/{YEAR + 1}").status_code == 404


def test_the_round_cannot_change_once_drawn_nor_lose_its_requests_or_their_terms(world, requester, api_as,
                                                                                 make_admin):
    admin = api_as(make_admin())
    requester()
    removed = admin.patch(f"/admin/seasons/{YEAR}", {"requests_open_at": None, "allocation_at": None})
    assert removed.status_code == 409 and removed.get_json()["code"] == "round_has_requests"
    terms = admin.patch(f"/admin/seasons/{YEAR}", {"terms_version": "2099-1", "terms_text": "Nya villkor."})
    assert terms.status_code == 409 and terms.get_json()["code"] == "round_has_requests"
    allocation.draw(YEAR, now=AFTER)
    moved = admin.patch(f"/admin/seasons/{YEAR}", {"allocation_at": (DRAWS + timedelta(minutes=5)).isoformat()})
    assert moved.status_code == 409 and moved.get_json()["code"] == "round_drawn"
    assert admin.patch(f"/admin/seasons/{YEAR}", {"name": "Nytt namn"}).status_code == 200


# ---------------------------------------------------------------------------------------------
# Requests through the API
# ---------------------------------------------------------------------------------------------


def test_request_errors(world, api_as, make_user, make_delegation, make_host, admin_actor):
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator, members=0)
    client = api_as(coordinator)
    url = f"/allocation/{YEAR}/requests"
    assert api_as().post(url, body(delegation)).status_code == 401
    assert api_as(make_host()).post(url, body(delegation)).status_code == 403
    assert client.post(f"/allocation/{YEAR + 5}/requests", body(delegation)).status_code == 404
    stranger = make_delegation(make_user("coordinator"), members=0)
    assert client.post(url, body(stranger)).status_code == 404
    for bad in ({"beds": 0}, {"beds": 101}, {"max_listings": 6}, {"preferred_listing_ids": [1, 2, 3, 4, 5, 6]},
                {"preferred_listing_ids": [world["a"].id, world["a"].id]}, {"preferred_listing_ids": [999_999]},
                {"payment_method": "cash"}, {"check_out": CHECK_IN.isoformat()}, {"max_walking_minutes": -1}):
        response = client.post(url, body(delegation, **bad))
        assert response.status_code == 422 and response.get_json()["code"] == "invalid", (bad, response.get_json())
    refused = client.post(url, body(delegation, accept_contract=False))
    assert refused.status_code == 422 and refused.get_json()["code"] == "contract_not_accepted"
    outside = client.post(url, body(delegation, check_in=f"{YEAR}-07-01", check_out=f"{YEAR}-07-02"))
    assert outside.status_code == 422 and outside.get_json()["code"] == "outside_season"

    first = client.post(url, body(delegation, preferred_listing_ids=[world["b"].id], max_listings=2))
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["preferred_listing_ids"] == [world["b"].id]
    # One request per organisation number: a second delegation of the same number, whoever registered it.
    twin = make_delegation(make_user("coordinator"), members=0, organisation_number=delegation.organisation_number)
    again = api_as(db.session.get_one(type(coordinator), twin.coordinator_id)).post(url, body(twin))
    assert again.status_code == 409 and again.get_json()["code"] == "request_exists"
    assert client.post(url, body(delegation)).get_json()["code"] == "request_exists"
    # Another coordinator cannot see or withdraw it.
    request_id = first.get_json()["id"]
    other = api_as(make_user("coordinator"))
    assert other.get(f"{url}/{request_id}").status_code == 404
    assert other.delete(f"{url}/{request_id}").status_code == 404
    assert client.get(f"/allocation/{YEAR}/requests").get_json()["requests"][0]["id"] == request_id
    # Withdrawn before the draw: the organisation may ask again.
    withdrawn = client.delete(f"{url}/{request_id}")
    assert withdrawn.status_code == 200 and withdrawn.get_json()["status"] == "withdrawn"
    assert client.delete(f"{url}/{request_id}").get_json()["status"] == "withdrawn"
    assert client.post(url, body(delegation)).status_code == 201
    assert api_as().get(f"/allocation/{YEAR}").get_json()["requests"] == 1

    # The season's limit per organisation number: 2 beds x 2 nights is over 3 bed-nights.
    seasons.update_season(admin_actor, YEAR, {"max_beds_per_organisation": 3})
    small = make_delegation(make_user("coordinator"), members=0)
    limited = api_as(db.session.get_one(type(coordinator), small.coordinator_id)).post(url, body(small))
    assert limited.status_code == 422 and limited.get_json()["code"] == "organisation_limit"

    # Outside requests_open_at .. allocation_at: round_closed.
    seasons.update_season(admin_actor, YEAR, {"requests_open_at": NOW + timedelta(minutes=30)})
    seasons.update_season(admin_actor, YEAR, {"max_beds_per_organisation": None})
    late = make_delegation(make_user("coordinator"), members=0)
    closed = api_as(db.session.get_one(type(coordinator), late.coordinator_id)).post(url, body(late))
    assert closed.status_code == 422 and closed.get_json()["code"] == "round_closed"
    assert api_as().get(f"/allocation/{YEAR}").get_json()["status"] == "scheduled"


def test_withdrawing_after_the_draw_is_409_round_closed(world, requester, api_as):
    coordinator, _delegation, request = requester()
    allocation.draw(YEAR, now=AFTER)
    response = api_as(coordinator).delete(f"/allocation/{YEAR}/requests/{request.id}")
    assert response.status_code == 409 and response.get_json()["code"] == "round_closed"
    assert db.session.get_one(AllocationRequest, request.id).status == "allocated"


def test_bookings_and_orders_are_not_bookable_before_booking_opens(world, make_user, make_delegation, api_as):
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator, members=0)
    client = api_as(coordinator)
    bed_ids = [bed.id for bed in world["a"].beds()]
    stay = {"delegation_id": delegation.id, "check_in": CHECK_IN.isoformat(), "check_out": CHECK_OUT.isoformat(),
            "accept_contract": True, "payment_method": "invoice"}
    single = client.post("/bookings", {**stay, "bed_ids": bed_ids[:1]})
    assert single.status_code == 422 and single.get_json()["code"] == "not_bookable"
    order = client.post("/orders", {**stay, "parts": [{"bed_ids": bed_ids[:1]}]})
    assert order.status_code == 422 and order.get_json()["code"] == "not_bookable"
    assert tally()[:4] == (0, 0, 0, 0)


# ---------------------------------------------------------------------------------------------
# The draw's orders, contracts, mail, audit and waiting list
# ---------------------------------------------------------------------------------------------


def test_the_draw_forms_each_order_with_its_contracts_mail_and_audit_or_joins_the_waiting_list(world, requester):
    made = [requester(beds=3, payment_method="invoice", preferred_listing_ids=[world["a"].id]),
            requester(beds=2, payment_method="card", max_walking_minutes=30),
            requester(beds=2, payment_method="invoice", max_price_ore=45000)]
    report = allocation.draw(YEAR, now=AFTER)
    assert report.drawn and report.requests == 3
    beds, decisions = decisions_of(world["season"].id)
    check_draw(beds, {}, decisions)
    mails = db.session.scalars(select(OutboxEmail)).all()
    for coordinator, _delegation, request in made:
        row = db.session.get_one(AllocationRequest, request.id)
        assert row.rank is not None and row.decided_at == AFTER
        summary = [m for m in mails if m.to_address == coordinator.email and row.ref in m.body_text]
        assert len(summary) == 1 and f"plats {row.rank} i dragningen" in summary[0].body_text
        actions = db.session.scalars(select(AuditEntry.action).where(
            AuditEntry.object_type == "allocation_request", AuditEntry.object_id == str(row.id))).all()
        assert sorted(actions) == sorted(["allocation.requested", f"allocation.{row.status}"])
        if row.status == "unallocated":
            entry = db.session.get_one(WaitlistEntry, row.waitlist_entry_id)
            assert (entry.status, entry.check_in, entry.check_out, entry.beds, entry.max_price_ore) == (
                "waiting", row.check_in, row.check_out, row.beds, row.max_price_ore)
            assert re.search(r"som nummer \d+", summary[0].body_text)
            continue
        order = db.session.get_one(Order, row.order_id)
        assert order.coordinator_id == coordinator.id and order.delegation_id == row.delegation_id
        for booking in order.bookings:
            contract = booking.contract
            assert contract is not None and contract.number in summary[0].body_text
            # Accepted in advance (the request), formed at the draw.
            assert contract.coordinator_accepted_at == row.accepted_at == NOW and contract.created_at == AFTER
            assert json.loads(contract.snapshot)["coordinator_acceptance"]["at"] == NOW.isoformat()
            attached = [m for m in mails if m.attachment_name == f"{contract.number}.pdf"]
            assert len(attached) == 1 and attached[0].to_address == coordinator.email
            if row.payment_method == "card":
                # Held for the season's allocation_payment_hours (24 here), not its hold_minutes.
                assert booking.status == "awaiting_payment" and booking.expires_at == AFTER + timedelta(hours=24)
                assert f"/bookings/{booking.id}/pay" in attached[0].body_text
            else:
                assert booking.status == "confirmed" and booking.invoice_number and booking.expires_at is None
    drawn = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "allocation.drawn"))
    assert json.loads(drawn.after)["seed"] == db.session.scalar(select(AllocationRound.seed))


def test_preferred_listings_win_over_a_cheaper_single_listing(world, requester):
    _coordinator, _delegation, request = requester(beds=2, preferred_listing_ids=[world["a"].id])
    allocation.draw(YEAR, now=AFTER)
    order = db.session.get_one(Order, db.session.get_one(AllocationRequest, request.id).order_id)
    assert [booking.listing_id for booking in order.bookings] == [world["a"].id]
    assert order.total_ore == 2 * 50000 * 2  # the dearer listing, because it is preferred


def test_the_organisation_limit_applies_at_the_draw(world, requester, admin_actor):
    _coordinator, _delegation, request = requester(beds=2)
    seasons.update_season(admin_actor, YEAR, {"max_beds_per_organisation": 2}, now=NOW)  # lowered after it
    allocation.draw(YEAR, now=AFTER)
    row = db.session.get_one(AllocationRequest, request.id)
    assert row.status == "unallocated" and row.order_id is None and row.waitlist_entry_id is not None
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "allocation.unallocated"))
    assert json.loads(audit.after)["reason"] == "organisation_limit"
    assert tally()[:4] == (0, 0, 0, 0)


def test_a_withdrawn_request_is_not_drawn(world, requester, make_user):
    coordinator, _delegation, request = requester()
    allocation.withdraw_request(Actor(coordinator.id, "coordinator"), YEAR, request.id, now=NOW)
    requester()
    allocation.draw(YEAR, now=AFTER)
    assert db.session.get_one(AllocationRequest, request.id).rank is None
    assert len(allocation.result(YEAR)["draw"]) == 1


# ---------------------------------------------------------------------------------------------
# Exactly once, and an interrupted draw
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def past_world(make_season, make_listing, requester):
    """A season whose draw was due an hour ago (so the command line, on the real clock, may run it), with four
    requests made while its requests were open."""
    season = make_season(requests_open_at=NOW - timedelta(hours=3), allocation_at=NOW - timedelta(hours=1),
                         bookings_open_at=NOW + timedelta(hours=1))
    make_listing(beds=3, price_ore=50000, season=season)
    make_listing(beds=2, price_ore=40000, season=season)
    made = [requester(now=NOW - timedelta(hours=2), beds=beds) for beds in (2, 2, 1, 3)]
    return {"season": season, "made": made}


def test_a_second_run_changes_nothing_and_says_so(past_world, runner):
    first = runner.invoke(args=["allocation", "draw", "--year", str(YEAR)])
    assert first.exit_code == 0, first.output
    assert f"Draw {YEAR}: complete; 4 request(s) ranked." in first.output
    after_first = tally()
    second = runner.invoke(args=["allocation", "draw", "--year", str(YEAR)])
    assert second.exit_code == 0 and "already made; nothing changed" in second.output
    assert tally() == after_first
    assert runner.invoke(args=["allocation", "draw-due"]).output.strip() == "No draw is due."
    assert tally() == after_first


def test_the_draw_waits_for_its_time(world, requester, runner):
    requester()
    early = runner.invoke(args=["allocation", "draw", "--year", str(YEAR)])
    assert early.exit_code == 1 and "round_open" in early.output
    assert db.session.scalar(select(AllocationRound.draw_state)) == "pending"
    with pytest.raises(DomainError):
        allocation.draw(YEAR, now=DRAWS - timedelta(seconds=1))


def test_draw_due_draws_the_seasons_whose_time_has_come(past_world, make_season, requester):
    later = make_season(year=YEAR + 1, requests_open_at=NOW - timedelta(hours=1),
                        allocation_at=NOW + timedelta(days=1), bookings_open_at=NOW + timedelta(days=2))
    requester(year=YEAR + 1, check_in=date(YEAR + 1, 6, 21), check_out=date(YEAR + 1, 6, 22))
    reports = allocation.draw_due(NOW)
    assert [(r.year, r.drawn) for r in reports] == [(YEAR, True)]
    assert db.session.scalar(select(AllocationRound.draw_state).where(
        AllocationRound.season_id == later.id)) == "pending"
    assert allocation.draw_due(NOW) == []


def test_an_interrupted_draw_is_completed_by_the_next_run_without_redoing_anything(past_world, monkeypatch):
    decided, original = count(), allocation._Draw.decide

    def power_cut_after_two(self, row, order, refusal):
        if next(decided) == 2:
            raise RuntimeError("power cut")
        return original(self, row, order, refusal)

    monkeypatch.setattr(allocation._Draw, "decide", power_cut_after_two)
    with pytest.raises(RuntimeError, match="power cut"):
        allocation.draw(YEAR, now=NOW)
    db.session.rollback()
    rows = db.session.scalars(select(AllocationRequest).order_by(AllocationRequest.rank)).all()
    assert [row.status != "submitted" for row in rows] == [True, True, False, False]
    assert db.session.scalar(select(AllocationRound.draw_state)) == "drawing"
    assert allocation.public_round(YEAR).seed is None  # not public until the draw is complete
    first_two = [(row.id, row.status, row.order_id, row.waitlist_entry_id, row.decided_at) for row in rows[:2]]
    half = tally()

    monkeypatch.undo()
    report = allocation.draw(YEAR, now=NOW + timedelta(minutes=5))

    assert report.drawn and report.allocated + report.unallocated == 2  # only the two left
    rows = db.session.scalars(select(AllocationRequest).order_by(AllocationRequest.rank)).all()
    assert [(row.id, row.status, row.order_id, row.waitlist_entry_id, row.decided_at) for row in rows[:2]] == first_two
    assert all(row.status in ("allocated", "unallocated") for row in rows)
    for row in rows:  # one decision each in the audit log, one order or one entry each
        assert db.session.scalar(select(func.count(AuditEntry.id)).where(
            AuditEntry.object_type == "allocation_request", AuditEntry.object_id == str(row.id),
            AuditEntry.action.in_(("allocation.allocated", "allocation.unallocated")))) == 1
    assert tally()[0] == half[0] + sum(1 for row in rows[2:] if row.status == "allocated")
    beds, decisions = decisions_of(past_world["season"].id)
    check_draw(beds, {}, decisions)
    assert allocation.verify(YEAR).ok


# ---------------------------------------------------------------------------------------------
# Verification on the command line
# ---------------------------------------------------------------------------------------------


def test_verify_prints_a_match_and_detects_a_tampered_rank(past_world, runner, tmp_path):
    assert runner.invoke(args=["allocation", "draw", "--year", str(YEAR)]).exit_code == 0
    checked = runner.invoke(args=["allocation", "verify", "--year", str(YEAR)])
    assert checked.exit_code == 0, checked.output
    assert "matches the commitment" in checked.output and "4 request(s)" in checked.output
    assert "all match" in checked.output and "The published draw verifies." in checked.output

    published = allocation.result(YEAR)
    published["draw"][0]["rank"], published["draw"][1]["rank"] = 2, 1
    saved = tmp_path / "result.json"
    saved.write_text(json.dumps(published), "utf-8")
    tampered = runner.invoke(args=["allocation", "verify", "--file", str(saved)])
    assert tampered.exit_code == 1 and "MISMATCH" in tampered.output
    assert f"ref {published['draw'][0]['ref']}: published rank 2, recomputed 1" in tampered.output
    # Nor can the stored ranks be changed: the database refuses it.
    with pytest.raises(DBAPIError):
        db.session.execute(text("UPDATE allocation_requests SET rank = rank + 10"))
    db.session.rollback()
    assert runner.invoke(args=["allocation", "verify", "--year", str(YEAR)]).exit_code == 0


def test_verify_before_the_draw_says_so(world, runner):
    response = runner.invoke(args=["allocation", "verify", "--year", str(YEAR)])
    assert response.exit_code == 1 and "not_drawn" in response.output


# ---------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------


def test_a_coordinator_makes_sees_and_withdraws_a_request_on_the_page(world, app, make_user, make_delegation):
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator, members=0)
    browser = signed_in(app, coordinator)
    page = browser.get("/coordinator/fordelning/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and world["season"].terms_text[:40] in html
    assert db.session.scalar(select(AllocationRound.seed_commitment)) in html
    form = {"csrf_token": csrf_from(page), "delegation_id": delegation.id, "check_in": CHECK_IN.isoformat(),
            "check_out": CHECK_OUT.isoformat(), "beds": "2", "max_listings": "2", "preferred_1": str(world["b"].id),
            "payment_method": "card"}
    refused = browser.post("/coordinator/fordelning/", data=form)
    assert refused.status_code == 422 and "godkänner avtalet i förväg" in refused.get_data(as_text=True)
    made = browser.post("/coordinator/fordelning/", data={**form, "accept_contract": "y"})
    assert made.status_code == 302, made.get_data(as_text=True)
    request = db.session.scalar(select(AllocationRequest))
    assert (request.beds, request.max_listings, request.payment_method) == (2, 2, "card")
    assert allocation.preferred_ids(request) == [world["b"].id]
    html = browser.get(made.headers["Location"]).get_data(as_text=True)
    assert request.ref in html and "Inskickad" in html
    fresh = csrf_from(browser.get("/coordinator/fordelning/"))
    twice = browser.post("/coordinator/fordelning/", data={**form, "accept_contract": "y", "csrf_token": fresh})
    assert twice.status_code == 409 and "har redan en ansökan" in twice.get_data(as_text=True)
    page = browser.get("/coordinator/fordelning/")
    withdrawn = browser.post(f"/coordinator/fordelning/{request.id}/withdraw?year={YEAR}",
                             data={"csrf_token": csrf_from(page)})
    assert withdrawn.status_code == 302
    db.session.rollback()
    assert db.session.get_one(AllocationRequest, request.id).status == "withdrawn"
    assert "Tillbakadragen" in browser.get("/coordinator/fordelning/").get_data(as_text=True)


def test_the_result_on_the_coordinators_page_and_the_public_page(world, requester, app, client):
    coordinator, _delegation, request = requester(beds=2)
    public = client.get(f"/fordelning/{YEAR}").get_data(as_text=True)
    assert 'data-requests="1"' in public and "data-seed" not in public
    assert client.get("/fordelning").headers["Location"].endswith(f"/fordelning/{YEAR}")

    allocation.draw(YEAR, now=AFTER)

    row = db.session.get_one(AllocationRequest, request.id)
    html = signed_in(app, coordinator).get("/coordinator/fordelning/").get_data(as_text=True)
    assert row.ref in html and f"<dd data-rank>{row.rank}</dd>" in html and "Fick bäddar" in html
    for booking in db.session.get_one(Order, row.order_id).bookings:
        assert f"/coordinator/bookings/{booking.id}" in html
    public = client.get(f"/fordelning/{YEAR}").get_data(as_text=True)
    assert db.session.scalar(select(AllocationRound.seed)) in public and row.ref in public
    assert "Kontrollerat: fröet stämmer med åtagandet" in public
    insyn = client.get("/insyn").get_data(as_text=True)
    assert db.session.scalar(select(AllocationRound.seed)) in insyn and f"/fordelning/{YEAR}" in insyn


def test_the_footer_links_the_round_and_a_season_without_one_says_so(client, make_season):
    make_season()
    assert 'href="/fordelning"' in client.get("/").get_data(as_text=True)
    response = client.get("/fordelning")
    assert response.status_code == 404 and "ingen fördelningsomgång" in response.get_data(as_text=True)


def test_admin_gives_a_season_a_round_through_the_form(client, admin_login):
    admin_login()
    page = client.get("/admin/seasons/new")
    year = YEAR + 1
    round_fields = {"requests_open_on": f"{year}-01-10", "requests_open_time": "09:00",
                    "allocation_on": f"{year}-01-20", "allocation_time": "12:00", "allocation_payment_hours": "36"}
    late = client.post("/admin/seasons/new", data={**season_form(), **round_fields, "allocation_on": f"{year}-03-01",
                                                   "csrf_token": csrf_from(page)})
    assert late.status_code == 422 and "senast när bokningen öppnar" in late.get_data(as_text=True)
    half = client.post("/admin/seasons/new", data={**season_form(), **round_fields, "allocation_time": "",
                                                   "csrf_token": csrf_from(page)})
    assert half.status_code == 422 and "både datum och klockslag" in half.get_data(as_text=True)
    made = client.post("/admin/seasons/new", data={**season_form(), **round_fields, "csrf_token": csrf_from(page)})
    assert made.status_code == 302, made.get_data(as_text=True)
    season = db.session.scalar(select(Season).where(Season.year == year))
    assert season.allocation_payment_hours == 36 and season.has_round
    assert season.requests_open_at.isoformat() == f"{year}-01-10T08:00:00+00:00"  # 09:00 in Stockholm
    edit = client.get(f"/admin/seasons/{year}/edit").get_data(as_text=True)
    assert db.session.scalar(select(AllocationRound.seed_commitment)) in edit and 'value="12:00"' in edit


def test_the_worker_runs_the_draw_once_due(past_world):
    """The worker's periodic list holds the draw: due, its first run draws; the next run has nothing to do."""
    from app.services import jobs

    job = next(job for job in jobs.PERIODIC if job.name == "allocation_draw")
    said = job.run_once(now=NOW)
    assert f"Draw {YEAR}: complete" in said, said
    assert db.session.scalar(select(AllocationRound.draw_state)) == "drawn"
    after = tally()
    assert job.run_once(now=NOW) == "" and tally() == after
