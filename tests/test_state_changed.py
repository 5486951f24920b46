"""State changes racing on one object, made deterministic: one side paused between its read and its write.

Each test pauses one side (tests/pause.py: an engine event in that side's thread, no switch in the app)
right after its first read of the object, lets the other side run until it finishes or waits on a lock,
then lets the paused side go. Exactly one side wins; the other answers 409 `state_changed` (the job:
does nothing); the rows agree with the winner. Runs on SQLite and PostgreSQL.

- a waiting-list offer: accepted (POST /waitlist/{id}/accept) racing its lapse (`holds expire`) or the
  entry's cancel (POST /waitlist/{id}/cancel), in both orders;
- a host's vetting: two admins' decisions on one host (approve racing suspend);
- a flag: two admins resolving it.
"""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, BedNight, Booking, Flag, HostProfile, WaitlistEntry
from app.services import booking as booking_service
from app.services import cancellations, flags, jobs, vetting, waitlist
from app.services.base import Actor
from app.services.errors import DomainError
from tests.helpers import NOW, YEAR
from tests.pause import interleave

CHECK_IN, CHECK_OUT = date(YEAR, 6, 21), date(YEAR, 6, 23)
T0 = NOW + timedelta(hours=1)


def _first_read_of_a_booking_by_id(sql: str) -> bool:
    return sql.startswith("SELECT") and "FROM bookings WHERE bookings.id =" in sql


def _stale_holds_select(sql: str) -> bool:
    return sql.startswith("SELECT") and "FROM bookings" in sql and "bookings.expires_at <=" in sql


def _host_profile_read(sql: str) -> bool:
    return sql.startswith("SELECT") and "FROM host_profiles" in sql and "host_profiles.user_id =" in sql


def _flag_read(sql: str) -> bool:
    return sql.startswith("SELECT") and "FROM flags" in sql and "flags.id =" in sql


@pytest.fixture
def offer(make_listing, make_user, make_delegation):
    """A 1-bed listing, booked, then cancelled by its guest: the bed is offered to a waiting delegation."""
    listing = make_listing(beds=1, price_ore=50000)
    owner = make_user("coordinator")
    owner_delegation = make_delegation(owner)
    booked = booking_service.create_booking(
        Actor(owner.id, "coordinator"), delegation_id=owner_delegation.id, bed_ids=[listing.beds()[0].id],
        check_in=CHECK_IN, check_out=CHECK_OUT, accept_contract=True, payment_method="invoice")
    waiting = make_user("coordinator")
    delegation = make_delegation(waiting)
    entry = waitlist.join(Actor(waiting.id, "coordinator"), delegation_id=delegation.id, year=YEAR,
                          check_in=CHECK_IN, check_out=CHECK_OUT, beds=1)
    cancellations.cancel_by_guest(Actor(owner.id, "coordinator"), booked.id, now=T0)
    db.session.expire_all()
    entry = db.session.get(WaitlistEntry, entry.id)
    assert entry.status == "offered"
    hold = db.session.get(Booking, entry.offer_booking_id)
    return {"entry_id": entry.id, "booking_id": hold.id, "coordinator": Actor(waiting.id, "coordinator"),
            "lapsed_at": hold.expires_at + timedelta(minutes=1)}


def _outcome(offer) -> tuple[str, str, list[str]]:
    db.session.remove()
    entry = db.session.get(WaitlistEntry, offer["entry_id"])
    booking = db.session.get(Booking, offer["booking_id"])
    states = sorted(db.session.scalars(select(BedNight.state).where(BedNight.booking_id == booking.id)))
    return entry.status, booking.status, states


def _code(error) -> str:
    return getattr(error, "code", repr(error))


SIDES = {
    "accept": lambda o: (lambda: waitlist.accept_offer(o["coordinator"], o["entry_id"], accept_contract=True,
                                                        now=T0).id),
    "lapse": lambda o: (lambda: jobs.expire_holds(now=o["lapsed_at"])),
    "cancel": lambda o: (lambda: waitlist.cancel(o["coordinator"], o["entry_id"], now=T0).status),
}
READS = {"accept": _first_read_of_a_booking_by_id, "cancel": _first_read_of_a_booking_by_id,
         "lapse": _stale_holds_select}


@pytest.mark.parametrize("paused,other", [("accept", "lapse"), ("lapse", "accept"),
                                          ("accept", "cancel"), ("cancel", "accept")])
def test_an_offer_accepted_racing_its_lapse_or_cancel_has_one_winner(app, offer, paused, other):
    results, errors, how = interleave(app, (paused, SIDES[paused](offer)), (other, SIDES[other](offer)),
                                      READS[paused])
    entry_status, booking_status, states = _outcome(offer)
    lost = {side: _code(error) for side, error in errors}
    facts = (f"{how}: results {results}, lost {lost}, entry {entry_status}, booking {booking_status}, "
             f"bed-nights {states}")
    print(facts)
    unexpected = [e for _, e in errors if not isinstance(e, DomainError)]
    assert not unexpected, facts
    # Exactly one winner: the job "loses" by expiring nothing, a service by answering state_changed.
    job_won = bool(results.get("lapse"))
    winners = [side for side in (paused, other) if side in results and (side != "lapse" or job_won)]
    assert len(winners) == 1, facts
    assert all(code == "state_changed" for code in lost.values()), facts
    if winners == ["accept"]:
        assert (entry_status, booking_status, set(states)) == ("booked", "confirmed", {"booked"}), facts
        assert db.session.get(Booking, offer["booking_id"]).contract is not None, facts
    elif winners == ["lapse"]:
        assert (entry_status, booking_status, set(states)) == ("expired", "expired", {"released"}), facts
    else:
        assert (entry_status, booking_status, set(states)) == ("cancelled", "expired", {"released"}), facts


def test_a_cancelled_entry_cancelled_again_is_not_cancellable_and_a_lapsed_offer_changed(app, offer):
    waitlist.cancel(offer["coordinator"], offer["entry_id"], now=T0)
    with pytest.raises(DomainError) as again:
        waitlist.cancel(offer["coordinator"], offer["entry_id"], now=T0)
    with pytest.raises(DomainError) as accept:
        waitlist.accept_offer(offer["coordinator"], offer["entry_id"], accept_contract=True, now=T0)
    assert (again.value.code, again.value.status, accept.value.code) == ("not_cancellable", 409, "state_changed")


def test_accepting_an_offer_past_its_time_before_the_job_ran_is_offer_expired(app, offer):
    with pytest.raises(DomainError) as late:
        waitlist.accept_offer(offer["coordinator"], offer["entry_id"], accept_contract=True,
                              now=offer["lapsed_at"])
    assert late.value.code == "offer_expired"
    assert _outcome(offer)[:2] == ("offered", "awaiting_payment")


@pytest.mark.parametrize("paused,other", [("approve", "suspend"), ("suspend", "approve")])
def test_two_admins_deciding_on_one_host_at_once_one_wins(app, make_host, make_admin, paused, other):
    host_id = make_host(approved=False).id
    admins = {"approve": Actor(make_admin().id, "admin"), "suspend": Actor(make_admin().id, "admin")}
    sides = {d: (lambda d=d: vetting.decide(admins[d], host_id, d, f"{d} efter granskning").vetting_status)
             for d in ("approve", "suspend")}
    results, errors, how = interleave(app, (paused, sides[paused]), (other, sides[other]), _host_profile_read)
    db.session.remove()
    status = db.session.get(HostProfile, host_id).vetting_status
    decisions = len(db.session.scalars(select(AuditEntry.id).where(
        AuditEntry.object_type == "host", AuditEntry.object_id == str(host_id),
        AuditEntry.action.in_(("host.approve", "host.suspend")))).all())
    lost = {side: _code(error) for side, error in errors}
    facts = f"{how}: results {results}, lost {lost}, host {status}, decisions recorded {decisions}"
    print(facts)
    assert list(results) == [other] and lost == {paused: "state_changed"}, facts
    assert status == results[other] and decisions == 1, facts


@pytest.mark.parametrize("paused,other", [("upheld", "dismissed"), ("dismissed", "upheld")])
def test_two_admins_resolving_one_flag_at_once_one_wins(app, make_host, make_admin, paused, other):
    host_id = make_host().id
    admins = {"upheld": Actor(make_admin().id, "admin"), "dismissed": Actor(make_admin().id, "admin")}
    flag_id = flags.create_flag(admins["upheld"], host_id=host_id, category="other", description="Dubbelsålt").id
    sides = {d: (lambda d=d: flags.resolve_flag(admins[d], flag_id, d, "Prövad mot villkorens regel 4.").status)
             for d in ("upheld", "dismissed")}
    results, errors, how = interleave(app, (paused, sides[paused]), (other, sides[other]), _flag_read)
    db.session.remove()
    flag = db.session.get(Flag, flag_id)
    strikes = db.session.get(HostProfile, host_id).strikes
    lost = {side: _code(error) for side, error in errors}
    facts = f"{how}: results {results}, lost {lost}, flag {flag.status}, strikes {strikes}"
    print(facts)
    assert len(results) == 1 and list(lost.values()) == ["state_changed"], facts
    winner = next(iter(results.values()))
    assert flag.status == winner and strikes == (1 if winner == "upheld" else 0), facts


def _user_read(sql: str) -> bool:
    return sql.startswith("SELECT") and "FROM users WHERE users.id =" in sql


def test_one_recovery_code_used_twice_at_once_is_accepted_once(app, make_admin):
    from app.services import accounts
    admin_id = make_admin().id
    code = _enrolled(admin_id)[0]
    sides = {name: (lambda: accounts.use_recovery_code(admin_id, code)) for name in ("first", "second")}
    results, errors, how = interleave(app, ("first", sides["first"]), ("second", sides["second"]), _user_read)
    facts = f"{how}: results {results}, errors {errors}"
    print(facts)
    assert not errors and sorted(results.values()) == [False, True], facts


def _enrolled(user_id: int) -> list[str]:
    import pyotp

    from app.services import accounts
    secret = accounts.new_totp_secret()
    return accounts.enrol_totp(user_id, secret, pyotp.TOTP(secret).at(NOW), now=NOW)
