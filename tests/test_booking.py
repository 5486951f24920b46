"""Issue 3: the booking engine through the API and the services."""
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, text

from app.extensions import db
from app.models import BedNight, Booking, Contract, Flag, HostProfile
from app.services import base, cancellations, ledger
from app.services import booking as booking_service
from app.services.base import Actor
from app.services.contracts import digest
from app.services.errors import Conflict, DomainError
from tests.helpers import NOW, YEAR, api_book


def test_availability_lists_free_beds_cheapest_first(api_world, make_listing, api_as):
    make_listing(beds=2, price_ore=40000, walking_minutes=30)
    response = api_as().get(f"/availability?year={YEAR}&check_in={YEAR}-06-21&check_out={YEAR}-06-23&beds=2")
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["total_ore_for_n"] for r in results] == [2 * 40000 * 2, 2 * 50000 * 2]
    assert len(results[1]["free_beds"]) == 3
    # A bed taken on one night of the stay is not free for the stay.
    api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:2], f"{YEAR}-06-22", f"{YEAR}-06-23")
    results = api_as().get(f"/availability?year={YEAR}&check_in={YEAR}-06-21&check_out={YEAR}-06-23&beds=2").get_json()
    assert [r["listing_id"] for r in results["results"]] != [] and api_world["listing"].id not in [
        r["listing_id"] for r in results["results"]]
    assert api_as().get(f"/availability?year={YEAR}&check_in={YEAR}-06-10&check_out={YEAR}-06-12&beds=1"
                        ).get_json()["code"] == "outside_season"
    assert api_as().get(f"/availability?year={YEAR}&check_in=x&beds=1").get_json()["code"] == "invalid"


def test_invoice_booking_forms_contract(api_world):
    response = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:2])
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    assert data["status"] == "confirmed" and data["expires_at"] is None
    assert data["total_ore"] == 2 * 2 * 50000 == sum(line["price_ore"] for line in data["lines"])
    assert data["contract"]["number"] == f"SP-{YEAR}-000001"
    assert data["invoice"]["number"] == f"F-{YEAR}-000001"
    contract = db.session.get(Contract, data["contract"]["id"])
    assert contract.sha256 == digest(contract.snapshot) == data["contract"]["sha256"]
    verify = api_world["coord"].get(f"/contracts/verify?number={contract.number}&sha256={contract.sha256}")
    assert verify.get_json() == {"valid": True, "status": "confirmed", "amended": False}
    assert api_world["coord"].get(f"/contracts/verify?number={contract.number}&sha256={'0' * 64}"
                              ).get_json() == {"valid": False, "status": None, "amended": False}
    full = api_world["coord"].get(f"/contracts/{contract.id}").get_json()
    assert full["parties"]["organisation"]["name"] == api_world["delegation"].name and full["status"] == "active"
    pdf = api_world["coord"].get(f"/contracts/{contract.id}/pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    for method in ("put", "patch", "delete"):
        assert getattr(api_world["coord"], method)(f"/contracts/{contract.id}").status_code == 405


def test_card_booking_is_a_hold_with_expiry(api_world):
    response = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:1], method="card")
    assert response.status_code == 201
    data = response.get_json()
    assert data["status"] == "awaiting_payment"
    expires = datetime.fromisoformat(data["expires_at"])
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    assert data["invoice"] is None


def test_conflict_lists_taken_bed_nights_and_books_nothing(api_world, make_user, make_delegation, api_as):
    assert api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:1], f"{YEAR}-06-22",
        f"{YEAR}-06-23"
                ).status_code == 201
    other = make_user("coordinator")
    other_delegation = make_delegation(other)
    response = api_book(api_as(other), other_delegation.id, api_world["bed_ids"][:2], f"{YEAR}-06-21", f"{YEAR}-06-24")
    assert response.status_code == 409
    data = response.get_json()
    assert data["code"] == "bed_nights_taken"
    assert data["conflicts"] == [{"bed_id": api_world["bed_ids"][0], "night": f"{YEAR}-06-22"}]
    rows = db.session.scalars(select(BedNight).where(BedNight.bed_id == api_world["bed_ids"][1])).all()
    assert rows == []  # all or nothing: the free bed was not taken either


@pytest.mark.parametrize("change, code, status", [
    ({"accept_contract": False}, "contract_not_accepted", 422),
    ({"check_in": f"{YEAR}-06-10", "check_out": f"{YEAR}-06-12"}, "outside_season", 422),
    ({"payment_method": "cash"}, "invalid", 422),
    ({"bed_ids": []}, "invalid", 422),
    ({"check_out": f"{YEAR}-06-21"}, "invalid", 422),
])
def test_booking_refusals(api_world, change, code, status):
    body = {"delegation_id": api_world["delegation"].id, "bed_ids": api_world["bed_ids"][:1],
        "check_in": f"{YEAR}-06-21",
            "check_out": f"{YEAR}-06-23", "accept_contract": True, "payment_method": "invoice", **change}
    response = api_world["coord"].post("/bookings", body)
    assert response.status_code == status and response.get_json()["code"] == code


def test_beds_of_two_listings_refused(api_world, make_listing):
    other = make_listing(beds=1)
    response = api_book(api_world["coord"], api_world["delegation"].id, [api_world["bed_ids"][0], other.beds()[0].id])
    assert response.status_code == 422 and response.get_json()["code"] == "beds_span_listings"


def test_not_bookable_before_opening_and_when_suspended(api_world, admin_actor, make_season, make_listing, api_as):
    from app.models import Season
    from app.services import vetting
    season = db.session.query(Season).filter_by(year=YEAR).one()
    season.bookings_open_at = NOW + timedelta(days=1)  # booking opens tomorrow
    db.session.commit()
    early = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:1])
    assert early.status_code == 422 and early.get_json()["code"] == "not_bookable"
    assert f"Bokningen för {YEAR} öppnar" in early.get_json()["detail"]
    season.bookings_open_at = NOW - timedelta(days=1)
    db.session.commit()
    assert db.session.query(BedNight).count() == 0  # nothing was booked

    vetting.decide(admin_actor, api_world["listing"].host_id, "suspend", "Upprepade klagomål från gäster (regel 4).")
    response = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:1])
    assert response.status_code == 422 and response.get_json()["code"] == "not_bookable"
    assert "Värden kan inte ta emot bokningar just nu." in response.get_json()["detail"]
    assert api_as().get(f"/listings/{api_world['listing'].id}").status_code == 404
    results = api_as().get(f"/availability?year={YEAR}&check_in={YEAR}-06-21&check_out={YEAR}-06-23&beds=1").get_json()
    assert api_world["listing"].id not in [r["listing_id"] for r in results["results"]]


def test_idempotency_key_replays_first_answer(api_world):
    headers = {"Idempotency-Key": "abc-123"}
    body = {"delegation_id": api_world["delegation"].id, "bed_ids": api_world["bed_ids"][:1],
        "check_in": f"{YEAR}-06-21",
            "check_out": f"{YEAR}-06-23", "accept_contract": True, "payment_method": "invoice"}
    first = api_world["coord"].post("/bookings", body, headers=headers)
    second = api_world["coord"].post("/bookings", body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert db.session.scalar(select(db.func.count(Booking.id))) == 1
    changed = api_world["coord"].post("/bookings", {**body, "bed_ids": api_world["bed_ids"][1:2]}, headers=headers)
    assert changed.status_code == 422 and changed.get_json()["code"] == "idempotency_key_reused"


def test_guest_cancellation_frees_beds_and_refunds_by_terms(api_world):
    booking_id = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:1]).get_json()["id"]
    response = api_world["coord"].post(f"/bookings/{booking_id}/cancel")
    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled_by_guest"
    assert response.get_json()["refund_ore"] == 0  # an unpaid invoice: nothing to refund...
    credited = api_world["coord"].get(f"/bookings/{booking_id}").get_json()["invoice"]["credited_ore"]
    assert credited == 2 * 50000  # ...it is credited in full before the free-cancellation date
    again = api_world["coord"].post(f"/bookings/{booking_id}/cancel")
    assert again.status_code == 409 and again.get_json()["code"] == "not_cancellable"
    assert api_book(api_world["coord"], api_world["delegation"].id,
        api_world["bed_ids"][:1]).status_code == 201  # freed


@pytest.mark.parametrize("today, refund", [
    (date(YEAR, 4, 21), 200000),  # the free-cancellation date itself: full refund
    (date(YEAR, 4, 22), 100000),  # the day after: the late percentage (50 %)
])
def test_guest_refund_boundary(api_world, today, refund):
    booking = booking_service.create_booking(
        Actor(api_world["coordinator"].id, "coordinator"), delegation_id=api_world["delegation"].id,
        bed_ids=api_world["bed_ids"][:2], check_in=date(YEAR, 6, 21), check_out=date(YEAR, 6, 23),
        accept_contract=True, payment_method="invoice")
    # Noon in Stockholm on that date.
    now = datetime(today.year, today.month, today.day, 10, tzinfo=UTC)
    assert ledger.guest_cancellation_ore(booking, base.local_date(now)) == (0, refund)
    cancelled = cancellations.cancel_by_guest(Actor(api_world["coordinator"].id, "coordinator"), booking.id, now=now)
    assert cancelled.refund_ore == 0 and cancelled.invoice_credited_ore == refund  # an unpaid invoice


def test_host_cancellation_locks_beds_strikes_and_flags(api_world, make_user, make_delegation, api_as):
    booking_id = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:2]).get_json()["id"]
    response = api_world["host"].post(f"/bookings/{booking_id}/host-cancel", {"reason": "Sold to a higher bidder"})
    assert response.status_code == 200
    # An unpaid invoice: nothing to refund.
    assert response.get_json() == {"id": booking_id, "status": "cancelled_by_host", "refund_ore": 0, "rehousing": None}
    states = set(db.session.scalars(select(BedNight.state).where(BedNight.booking_id == booking_id)))
    assert states == {"host_cancelled"}
    other = make_user("coordinator")
    retry = api_book(api_as(other), make_delegation(other).id, api_world["bed_ids"][:1])
    assert retry.status_code == 409  # the host cannot resell those bed-nights
    profile = db.session.get(HostProfile, api_world["listing"].host_id)
    assert profile.strikes == 1
    flag = db.session.scalar(select(Flag).where(Flag.booking_id == booking_id))
    assert flag.source == "system" and flag.strike_given
    assert api_world["host"].post(f"/bookings/{booking_id}/host-cancel", {"reason": "again"}).get_json()["code"] == \
        "not_cancellable"


def test_strike_limit_suspends_host(api_world, make_admin, api_as):
    admin = api_as(make_admin())
    host_id = api_world["listing"].host_id
    for _ in range(3):
        flag = admin.post("/flags", {"host_id": host_id, "category": "overcharging", "description": "x"})
        assert flag.status_code == 201
        admin.post(f"/admin/flags/{flag.get_json()['id']}/resolve",
                   {"decision": "upheld", "note": "Styrkt av två gäster, regel 4."})
    assert db.session.get(HostProfile, host_id).vetting_status == "suspended"
    assert api_book(api_world["coord"], api_world["delegation"].id,
        api_world["bed_ids"][:1]).get_json()["code"] == "not_bookable"


def test_upholding_system_flag_adds_no_second_strike(api_world, make_admin, api_as):
    booking_id = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:1]).get_json()["id"]
    api_world["host"].post(f"/bookings/{booking_id}/host-cancel", {"reason": "x"})
    admin = api_as(make_admin())
    flags = admin.get("/admin/flags?status=open").get_json()["flags"]
    assert flags[0]["source"] == "system"
    admin.post(f"/admin/flags/{flags[0]['id']}/resolve",
               {"decision": "upheld", "note": "Avtalsbrott: värden avbokade, regel 7."})
    assert db.session.get(HostProfile, api_world["listing"].host_id).strikes == 1


def test_coordinator_flags_host(api_world):
    response = api_world["coord"].post("/flags", {"host_id": api_world["listing"].host_id,
        "category": "misrepresentation",
                                              "description": "No beds at the address"})
    assert response.status_code == 201 and response.get_json()["status"] == "open"
    assert api_world["host"].post("/flags", {"host_id": 1, "category": "other", "description": "x"}).status_code == 403


def test_others_cannot_see_or_touch_booking(api_world, make_user, make_host, make_delegation, api_as):
    data = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:1]).get_json()
    stranger = api_as(make_user("coordinator"))
    other_host = api_as(make_host())
    for client in (stranger, other_host):
        assert client.get(f"/bookings/{data['id']}").status_code == 404
        assert client.get(f"/contracts/{data['contract']['id']}").status_code == 404
        assert client.get(f"/contracts/{data['contract']['id']}/pdf").status_code == 404
    assert stranger.post(f"/bookings/{data['id']}/cancel").status_code == 404
    assert other_host.post(f"/bookings/{data['id']}/host-cancel", {"reason": "x"}).status_code == 404
    assert stranger.get(f"/delegations/{api_world['delegation'].id}").status_code == 404
    assert api_world["host"].get(f"/bookings/{data['id']}").status_code == 200  # its host may read it


def test_rooming_and_csv(api_world):
    data = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:2]).get_json()
    members = api_world["coord"].get(f"/delegations/{api_world['delegation'].id}").get_json()["members"]
    response = api_world["coord"].put(f"/bookings/{data['id']}/rooming", {"assignments": [
        {"bed_id": api_world["bed_ids"][0], "member_id": members[0]["id"]},
        {"bed_id": api_world["bed_ids"][1], "member_id": members[1]["id"]}]})
    assert response.status_code == 200
    double = api_world["coord"].put(f"/bookings/{data['id']}/rooming", {"assignments": [
        {"bed_id": api_world["bed_ids"][0], "member_id": members[0]["id"]},
        {"bed_id": api_world["bed_ids"][1], "member_id": members[0]["id"]}]})
    assert double.status_code == 409 and double.get_json()["code"] == "member_double_booked"
    not_a_list = api_world["coord"].put(f"/bookings/{data['id']}/rooming", {"assignments": "alla i säng 1"},
                                    headers={"Accept-Language": "sv"})
    assert not_a_list.status_code == 422
    assert not_a_list.get_json()["errors"]["assignments"] == ["Rad 0: ange bed_id och member_id."]
    csv_response = api_world["coord"].get(f"/delegations/{api_world['delegation'].id}/rooming.csv")
    assert csv_response.status_code == 200 and csv_response.mimetype == "text/csv"
    text_body = csv_response.data.decode("utf-8")
    assert text_body.startswith("\ufeff") and text_body.splitlines()[0].count(";") == 5
    assert len(text_body.splitlines()) == 1 + 4 and members[0]["name"] in text_body


def test_host_blocks_own_nights(api_world):
    bed_id = api_world["bed_ids"][0]
    response = api_world["host"].post(f"/beds/{bed_id}/blocks", {"check_in": f"{YEAR}-06-20",
        "check_out": f"{YEAR}-06-22"})
    assert response.status_code == 201
    again = api_world["host"].post(f"/beds/{bed_id}/blocks", {"check_in": f"{YEAR}-06-21",
        "check_out": f"{YEAR}-06-23"})
    assert again.status_code == 409 and again.get_json()["conflicts"] == [{"bed_id": bed_id, "night": f"{YEAR}-06-21"}]
    assert api_book(api_world["coord"], api_world["delegation"].id, [bed_id], f"{YEAR}-06-20",
        f"{YEAR}-06-21").status_code == 409


def test_expired_hold_released_in_booking_transaction_and_by_cli(api_world, runner, make_user, make_delegation):
    coord_actor = Actor(api_world["coordinator"].id, "coordinator")
    past = NOW - timedelta(hours=1)
    hold = booking_service.create_booking(
        coord_actor, delegation_id=api_world["delegation"].id, bed_ids=api_world["bed_ids"][:1], check_in=date(YEAR,
            6, 21),
        check_out=date(YEAR, 6, 22), accept_contract=True, payment_method="card", now=past)
    other = make_user("coordinator")
    booking = booking_service.create_booking(
        Actor(other.id, "coordinator"), delegation_id=make_delegation(other).id, bed_ids=api_world["bed_ids"][:1],
        check_in=date(YEAR, 6, 21), check_out=date(YEAR, 6, 22), accept_contract=True, payment_method="invoice")
    assert booking.status == "confirmed"
    assert db.session.get(Booking, hold.id).status == "expired"
    hold2 = booking_service.create_booking(
        coord_actor, delegation_id=api_world["delegation"].id, bed_ids=api_world["bed_ids"][1:2],
        check_in=date(YEAR, 6, 21), check_out=date(YEAR, 6, 22), accept_contract=True, payment_method="card",
        now=past)
    result = runner.invoke(args=["holds", "expire"])
    assert result.exit_code == 0 and "Expired 1 hold" in result.output
    db.session.expire_all()
    assert db.session.get(Booking, hold2.id).status == "expired"


def test_contract_row_cannot_be_updated_or_deleted_in_sql(api_world):
    data = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:1]).get_json()
    contract_id = data["contract"]["id"]
    for statement in (f"UPDATE contracts SET sha256 = 'forged' WHERE id = {contract_id}",
                      f"DELETE FROM contracts WHERE id = {contract_id}"):
        with pytest.raises(Exception, match="immutable"):
            db.session.execute(text(statement))
            db.session.commit()
        db.session.rollback()
    contract = db.session.get(Contract, contract_id)
    assert contract.sha256 == digest(contract.snapshot)


def test_double_booking_refused_by_database_itself(api_world):
    """Even a raw insert that skips the service cannot occupy a taken bed-night."""
    api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:1], f"{YEAR}-06-21", f"{YEAR}-06-22")
    from sqlalchemy.exc import IntegrityError
    with pytest.raises(IntegrityError):
        db.session.add(BedNight(bed_id=api_world["bed_ids"][0], night=date(YEAR, 6, 21), state="host_block"))
        db.session.commit()
    db.session.rollback()


def test_service_conflict_error_for_direct_callers(api_world):
    actor = Actor(api_world["coordinator"].id, "coordinator")
    kwargs = dict(delegation_id=api_world["delegation"].id, bed_ids=api_world["bed_ids"][:1], check_in=date(YEAR, 6,
        21),
                  check_out=date(YEAR, 6, 22), accept_contract=True, payment_method="invoice")
    booking_service.create_booking(actor, **kwargs)
    with pytest.raises(Conflict) as raised:
        booking_service.create_booking(actor, **kwargs)
    assert raised.value.code == "bed_nights_taken"
    with pytest.raises(DomainError):
        booking_service.create_booking(actor, **{**kwargs, "accept_contract": False})


def test_booked_nights_keep_their_price_when_the_host_changes_it(api_world):
    data = api_book(api_world["coord"], api_world["delegation"].id, api_world["bed_ids"][:1]).get_json()
    bed_id = api_world["bed_ids"][0]
    assert api_world["host"].put(f"/beds/{bed_id}/prices/{YEAR}", {"price_ore": 30000}).status_code == 200
    after = api_world["coord"].get(f"/bookings/{data['id']}").get_json()
    assert [line["price_ore"] for line in after["lines"]] == [50000, 50000] and after["total_ore"] == 100000
    contract = api_world["coord"].get(f"/contracts/{data['contract']['id']}").get_json()
    assert {line["price_ore"] for line in contract["lines"]} == {50000}
    # A client cannot set a line's price through the rooming route either.
    api_world["coord"].put(f"/bookings/{data['id']}/rooming", {"assignments": [
        {"bed_id": bed_id, "member_id": None, "price_ore": 1}]})
    assert api_world["coord"].get(f"/bookings/{data['id']}").get_json()["total_ore"] == 100000
