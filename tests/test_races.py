"""Races over HTTP against gunicorn with 4 workers, on PostgreSQL (READ COMMITTED).

Racers are released together by a threading.Barrier, 10 rounds each:

(a) a host cancels 8 confirmed bookings at once: the strike counter equals the `host.strike`
    audit entries, the host is suspended (once) at the season's strike limit;
(b) three admins uphold one flag at once: one 200, two 409, exactly one strike;
(c) guest and host cancel one booking at once: one 200, one 409, and the bed-nights agree with
    the winner.

SQLite serialises writers, so these races only exist on PostgreSQL; without it the tests skip
(and fail with CI=true, as everywhere else).
"""
from __future__ import annotations

from collections import Counter as Tally
from datetime import timedelta

import pytest
import requests

from tests.helpers import FIRST_NIGHT, PASSWORD, ROUNDS, YEAR
from tests.helpers import RACE_STRIKE_LIMIT as STRIKE_LIMIT
from tests.live_server import RaceWorld as World
from tests.live_server import race_json

# gunicorn's 4 workers and the racing clients want the whole machine: `make test` runs these after the rest.
pytestmark = pytest.mark.serial

HOST_BOOKINGS = 8


def new_host_with_bookings(race_world: World, n_bookings: int) -> tuple[int, str, list[int]]:
    """A fresh approved host with one published listing of `n_bookings` beds, each booked (invoice)."""
    from app.extensions import db
    from app.services import accounts, booking, listings, pricing, vetting
    from app.services.base import Actor

    n = race_world.next()
    with race_world.app.app_context():
        admin = Actor(race_world.admin_id, "admin")
        host = accounts.register_user(f"host{n}@example.se", PASSWORD, f"Värd {n}", "host")
        host_actor = Actor(host.id, "host")
        vetting.submit_profile(host_actor, legal_name=f"Värd {n} AB", phone="+46 498 123 456",
                               address="Strandgatan 1", postal_code="621 56", right_to_rent=True)
        vetting.decide(admin, host.id, "approve", "checked")
        booking_ids = []
        if n_bookings:  # a host with nothing to sell needs no listing
            listing = listings.create_listing(host_actor, title=f"Huset {n}", description="Sängar.",
                                              address="Strandgatan 1", postal_code="621 56", walking_minutes=5)
            room = listings.add_room(host_actor, listing.id, "Rum 1")
            bed_ids = []
            for b in range(n_bookings):
                bed = listings.add_bed(host_actor, room.id, f"Säng {b + 1}", "single")
                pricing.set_price(host_actor, bed.id, YEAR, 40000)
                bed_ids.append(bed.id)
            from app.models import Season
            season = db.session.scalars(db.select(Season).where(Season.year == YEAR)).one()
            listings.publish(host_actor, listing.id, season.terms_version)
            coordinator = Actor(race_world.coordinator_id, "coordinator")
            for bed_id in bed_ids:
                item = booking.create_booking(coordinator, delegation_id=race_world.delegation_id, bed_ids=[bed_id],
                                              check_in=FIRST_NIGHT, check_out=FIRST_NIGHT + timedelta(days=1),
                                              accept_contract=True, payment_method="invoice")
                assert item.status == "confirmed"
                booking_ids.append(item.id)
        token = accounts.issue_token(host)
        host_id = host.id
        db.session.remove()
    return host_id, token, booking_ids


def race(calls: list[tuple[str, str, dict]]) -> list[tuple[int, dict]]:
    """POST each (url, token, body) from its own connection, all released at once by a barrier."""
    return race_json([("POST", url, token, body) for url, token, body in calls])


def host_facts(race_world: World, host_id: int) -> tuple[int, str, int, int]:
    """(strikes, vetting status, host.strike audit entries, host.suspend audit entries)."""
    strikes, status = race_world.rows("SELECT strikes, vetting_status FROM host_profiles WHERE user_id = :id",
                                 id=host_id)[0]
    audits = dict(race_world.rows("SELECT action, count(*) FROM audit_entries WHERE object_type = 'host' "
                             "AND object_id = :id GROUP BY action", id=str(host_id)))
    return strikes, status, audits.get("host.strike", 0), audits.get("host.suspend", 0)


def test_parallel_host_cancellations_count_every_strike_and_suspend_once(race_world):
    failures = []
    for round_ in range(ROUNDS):
        host_id, token, booking_ids = new_host_with_bookings(race_world, HOST_BOOKINGS)
        base = race_world.server.base_url + "/api/v1/bookings/"
        results = race([(f"{base}{b}/host-cancel", token, {"reason": "dubbelbokat"}) for b in booking_ids])
        statuses = Tally(status for status, _ in results)
        wins = statuses[200]
        strikes, status, strike_records, suspensions = host_facts(race_world, host_id)
        me = requests.get(race_world.server.base_url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"},
                          timeout=30).json()["host"]
        cancelled = race_world.scalar("SELECT count(*) FROM bookings WHERE host_id = :id"
                                      " AND status = 'cancelled_by_host'",
                                 id=host_id)
        problems = []
        if set(statuses) - {200, 403, 409}:
            problems.append(f"unexpected answers {dict(statuses)}: {results}")
        if not (strikes == strike_records == wins == cancelled):
            problems.append(f"strikes {strikes}, host.strike records {strike_records}, 200s {wins}, "
                            f"cancelled_by_host bookings {cancelled}")
        if (me["strikes"], me["vetting_status"]) != (strikes, status):
            problems.append(f"/me says {me}, the database says strikes {strikes}, status {status}")
        if strikes >= STRIKE_LIMIT and (status != "suspended" or suspensions != 1):
            problems.append(f"{strikes} strikes (limit {STRIKE_LIMIT}) but status {status}, "
                            f"{suspensions} host.suspend records")
        if problems:
            failures.append(f"round {round_}: " + "; ".join(problems))
        print(f"[a] round {round_}: answers {dict(statuses)}, strikes {strikes}, records {strike_records}, "
              f"status {status}, suspensions {suspensions}")
    assert failures == []


def test_three_admins_upholding_one_flag_give_one_strike(race_world):
    from app.services import flags
    from app.services.base import Actor

    host_id, _token, _ = new_host_with_bookings(race_world, 0)
    failures = []
    for round_ in range(ROUNDS):
        with race_world.app.app_context():
            flag_id = flags.create_flag(Actor(race_world.admin_id, "admin"), host_id=host_id, category="other",
                                        description=f"Omgång {round_}").id
            from app.extensions import db
            db.session.remove()
        before = host_facts(race_world, host_id)
        url = f"{race_world.server.base_url}/api/v1/admin/flags/{flag_id}/resolve"
        note = "Stämmer: styrkt av gästerna."
        results = race([(url, token, {"decision": "upheld", "note": note}) for token in race_world.admin_tokens])
        after = host_facts(race_world, host_id)
        statuses = sorted(status for status, _ in results)
        problems = []
        if statuses != [200, 409, 409]:
            problems.append(f"answers {statuses}: {results}")
        elif any(body.get("code") != "state_changed" for status, body in results if status == 409):
            problems.append(f"409 without code state_changed: {results}")
        if after[0] - before[0] != 1 or after[2] - before[2] != 1:
            problems.append(f"strikes {before[0]} -> {after[0]}, host.strike records {before[2]} -> {after[2]}")
        if problems:
            failures.append(f"round {round_}: " + "; ".join(problems))
        print(f"[b] round {round_}: answers {statuses}, strikes {before[0]} -> {after[0]}")
    assert failures == []


def test_guest_and_host_cancelling_one_booking_one_wins_and_bed_nights_agree(race_world):
    failures = []
    for round_ in range(ROUNDS):
        host_id, host_token, (booking_id,) = new_host_with_bookings(race_world, 1)
        base = f"{race_world.server.base_url}/api/v1/bookings/{booking_id}"
        calls = [(base + "/cancel", race_world.coordinator_token, {}), (base + "/host-cancel", host_token,
            {"reason": "x"})]
        if round_ % 2:
            calls.reverse()  # alternate who starts its thread first
        results = race(calls)
        statuses = sorted(status for status, _ in results)
        booking_status = race_world.scalar("SELECT status FROM bookings WHERE id = :id", id=booking_id)
        states = Tally(s for (s,) in race_world.rows("SELECT state FROM bed_nights WHERE booking_id = :id",
            id=booking_id))
        strikes, _status, strike_records, _ = host_facts(race_world, host_id)
        winners = [body.get("status") for status, body in results if status == 200]
        problems = []
        if statuses != [200, 409]:
            problems.append(f"answers {statuses}: {results}")
        elif any(body.get("code") != "not_cancellable" for status, body in results if status == 409):
            problems.append(f"409 without code not_cancellable: {results}")
        if winners and winners != [booking_status]:
            problems.append(f"the 200 said {winners}, the booking is {booking_status}")
        if booking_status == "cancelled_by_guest":
            if any(states[s] for s in ("held", "booked", "host_block", "host_cancelled")) or strikes or strike_records:
                problems.append(f"guest won but bed-nights {dict(states)}, strikes {strikes}/{strike_records}")
        elif booking_status == "cancelled_by_host":
            if set(states) != {"host_cancelled"} or strikes != 1 or strike_records != 1:
                problems.append(f"host won but bed-nights {dict(states)}, strikes {strikes}/{strike_records}")
        else:
            problems.append(f"booking is {booking_status}")
        if problems:
            failures.append(f"round {round_}: " + "; ".join(problems))
        print(f"[c] round {round_}: answers {statuses}, booking {booking_status}, bed-nights {dict(states)}")
    assert failures == []
