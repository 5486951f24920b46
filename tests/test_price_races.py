"""Price races over HTTP against gunicorn with 4 workers, on PostgreSQL (READ COMMITTED), 10 rounds each,
racers released together by a barrier (the pattern and race_world of tests/test_races.py):

(d) two first prices for one bed at once (a new bed of a published listing, booking open): no 500, one price
    row, and the accepted price changes form one chain (each one's old price is the previous one's price);
(e) a booking racing the host's lowering of the price: the booking copies the old price only if it
    committed before the lowering did;
(f) a booking racing the admin's lowering of the cap: no bed-night is sold above the cap in force when
    the booking commits.

Commit order is read from the database: deferred constraint triggers, added to this test database only,
take a number from one sequence as each transaction commits (a deferred trigger runs at COMMIT, after every
row lock of the transaction has been granted), so "the booking committed before the lowering" is a fact
the test reads, not a guess.
"""
from __future__ import annotations

from collections import Counter as Tally
from datetime import timedelta

import pytest
from sqlalchemy import text

from tests.helpers import FIRST_NIGHT, PASSWORD, ROUNDS, YEAR
from tests.live_server import RaceWorld as World
from tests.live_server import race_json

OLD, LOWER, CAP = 80000, 50000, 60000

COMMIT_ORDER = """
CREATE SEQUENCE IF NOT EXISTS test_commit_order;
CREATE TABLE IF NOT EXISTS test_commits (seq bigint NOT NULL, tbl text NOT NULL, row_id bigint NOT NULL);
CREATE OR REPLACE FUNCTION test_log_commit() RETURNS trigger AS $$
BEGIN INSERT INTO test_commits VALUES (nextval('test_commit_order'), TG_TABLE_NAME, NEW.id); RETURN NULL; END
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS test_bookings_commit ON bookings;
CREATE CONSTRAINT TRIGGER test_bookings_commit AFTER INSERT ON bookings DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION test_log_commit();
DROP TRIGGER IF EXISTS test_price_changes_commit ON price_changes;
CREATE CONSTRAINT TRIGGER test_price_changes_commit AFTER INSERT ON price_changes DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION test_log_commit();
DROP TRIGGER IF EXISTS test_seasons_commit ON seasons;
CREATE CONSTRAINT TRIGGER test_seasons_commit AFTER UPDATE ON seasons DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION test_log_commit();
"""


pytestmark = pytest.mark.serial  # gunicorn races: `make test` runs them alone

def _commit_order(race_world: World) -> None:
    with race_world.engine.begin() as conn:
        conn.execute(text(COMMIT_ORDER))


def _committed_at(race_world: World, table: str, row_id: int):
    return race_world.scalar("SELECT max(seq) FROM test_commits WHERE tbl = :t AND row_id = :id", t=table, id=row_id)


def race(calls: list[tuple[str, str, str, dict]]) -> list[tuple[int, dict]]:
    """Send each (method, url, token, body) from its own connection, all released at once by a barrier."""
    return race_json(calls)


def _listing(race_world: World, beds: int, price_ore=OLD, unpriced: int = 0) -> tuple[int, str, list[int], list[int]]:
    """A fresh approved host with a published listing of `beds` beds at `price_ore`, plus `unpriced` beds added
    after publishing. Returns (host id, host token, priced bed ids, unpriced bed ids)."""
    from app.extensions import db
    from app.models import Season
    from app.services import accounts, listings, pricing, seasons, vetting
    from app.services.base import Actor

    n = race_world.next()
    with race_world.app.app_context():
        admin = Actor(race_world.admin_id, "admin")
        season = db.session.scalars(db.select(Season).where(Season.year == YEAR)).one()
        if season.price_cap_ore < 90000:  # the previous round of (f) lowered it
            seasons.update_season(admin, YEAR, {"price_cap_ore": 90000})
        host = accounts.register_user(f"prishost{n}@example.se", PASSWORD, f"Värd {n}", "host")
        actor = Actor(host.id, "host")
        vetting.submit_profile(actor, legal_name=f"Värd {n} AB", phone="+46 498 123 456", address="Strandgatan 1",
                               postal_code="621 56", right_to_rent=True)
        vetting.decide(admin, host.id, "approve", "checked")
        listing = listings.create_listing(actor, title=f"Huset {n}", description="Sängar.",
                                          address=f"Prisgatan {n}", postal_code="621 56", walking_minutes=5)
        room = listings.add_room(actor, listing.id, "Rum 1")
        priced = []
        for b in range(beds):
            bed = listings.add_bed(actor, room.id, f"Säng {b + 1}", "single")
            pricing.set_price(actor, bed.id, YEAR, price_ore)
            priced.append(bed.id)
        terms = db.session.scalars(db.select(Season.terms_version).where(Season.year == YEAR)).one()
        listings.publish(actor, listing.id, terms)
        extra = [listings.add_bed(actor, room.id, f"Ny säng {b + 1}", "single").id for b in range(unpriced)]
        token = accounts.issue_token(host)
        host_id = host.id
        db.session.remove()
    return host_id, token, priced, extra


def test_parallel_first_prices_for_one_bed_make_one_consistent_history(race_world):
    failures = []
    for round_ in range(ROUNDS):
        _host_id, token, _, (bed_id,) = _listing(race_world, 1, unpriced=1)
        url = f"{race_world.server.base_url}/api/v1/beds/{bed_id}/prices/{YEAR}"
        asks = [50000, 60000, 55000, 45000]
        results = race([("PUT", url, token, {"price_ore": ask}) for ask in asks])
        statuses = Tally(status for status, _ in results)
        rows = race_world.rows("SELECT price_ore FROM bed_prices WHERE bed_id = :id", id=bed_id)
        log = race_world.rows("SELECT old_price_ore, requested_price_ore, accepted, refusal_code FROM price_changes "
                         "WHERE bed_id = :id ORDER BY id", id=bed_id)
        accepted = [(old, new) for old, new, ok, _ in log if ok]
        problems = []
        if set(statuses) - {200, 409}:
            problems.append(f"answers {dict(statuses)}: {results}")
        if len(rows) != 1:
            problems.append(f"{len(rows)} price rows")
        if statuses[200] != len(accepted) or len(log) != len(asks):
            problems.append(f"{statuses[200]} answered 200, log {log}")
        chain = [None] + [new for _, new in accepted]
        if [old for old, _ in accepted] != chain[:-1]:
            problems.append(f"the accepted changes do not chain: {accepted}")
        if rows and accepted and rows[0][0] != accepted[-1][1]:
            problems.append(f"the price is {rows[0][0]}, the last accepted change says {accepted[-1][1]}")
        if any(ok and old is not None and new > old for old, new, ok, _ in log):
            problems.append(f"a raise was accepted on a bed on offer: {log}")
        if problems:
            failures.append(f"round {round_}: " + "; ".join(problems))
        print(f"[d] round {round_}: answers {dict(statuses)}, log {log}")
    assert failures == []


def test_a_booking_racing_a_price_lowering_copies_the_price_in_force_at_commit(race_world):
    _commit_order(race_world)
    failures = []
    for round_ in range(ROUNDS):
        _host_id, host_token, (bed_id,), _ = _listing(race_world, 1)
        base = f"{race_world.server.base_url}/api/v1"
        booking = ("POST", base + "/bookings", race_world.coordinator_token, {
            "delegation_id": race_world.delegation_id, "bed_ids": [bed_id], "check_in": FIRST_NIGHT.isoformat(),
            "check_out": (FIRST_NIGHT + timedelta(days=2)).isoformat(), "accept_contract": True,
            "payment_method": "invoice"})
        lowering = ("PUT", f"{base}/beds/{bed_id}/prices/{YEAR}", host_token, {"price_ore": LOWER})
        calls = [booking, lowering] if round_ % 2 else [lowering, booking]
        results = race(calls)
        statuses = sorted(status for status, _ in results)
        booking_id = race_world.scalar("SELECT b.id FROM bookings b JOIN bed_nights n ON n.booking_id = b.id "
                                  "WHERE n.bed_id = :bed LIMIT 1", bed=bed_id)
        problems = []
        if statuses != [200, 201]:
            problems.append(f"answers {statuses}: {results}")
        if booking_id is not None:
            sold = {p for (p,) in race_world.rows("SELECT price_ore FROM bed_nights WHERE booking_id = :id",
                id=booking_id)}
            change = race_world.scalar("SELECT max(id) FROM price_changes WHERE bed_id = :bed"
                                       " AND requested_price_ore = :p",
                                  bed=bed_id, p=LOWER)
            booked_at, lowered_at = _committed_at(race_world, "bookings", booking_id), _committed_at(race_world,
                "price_changes",
                                                                                                change)
            first = "booking" if booked_at < lowered_at else "lowering"
            if sold != ({OLD} if first == "booking" else {LOWER}):
                problems.append(f"{first} committed first, yet the booking copied {sold}")
            total = race_world.scalar("SELECT total_ore FROM bookings WHERE id = :id", id=booking_id)
            if total != 2 * min(sold):
                problems.append(f"total {total} for lines {sold}")
        else:
            first = "-"
        if problems:
            failures.append(f"round {round_}: " + "; ".join(problems))
        print(f"[e] round {round_}: answers {statuses}, committed first: {first}")
    assert failures == []


def test_a_booking_racing_a_cap_lowering_never_sells_above_the_cap_in_force(race_world):
    _commit_order(race_world)
    failures = []
    for round_ in range(ROUNDS):
        _host_id, _token, bed_ids, _ = _listing(race_world, 2)
        base = f"{race_world.server.base_url}/api/v1"
        booking = ("POST", base + "/bookings", race_world.coordinator_token, {
            "delegation_id": race_world.delegation_id, "bed_ids": bed_ids, "check_in": FIRST_NIGHT.isoformat(),
            "check_out": (FIRST_NIGHT + timedelta(days=1)).isoformat(), "accept_contract": True,
            "payment_method": "invoice"})
        season_id = race_world.scalar("SELECT id FROM seasons WHERE year = :y", y=YEAR)
        before = race_world.scalar("SELECT coalesce(max(seq), 0) FROM test_commits WHERE tbl = 'seasons'")
        capping = ("PATCH", f"{base}/admin/seasons/{YEAR}", race_world.admin_tokens[0], {"price_cap_ore": CAP})
        results = race([booking, capping] if round_ % 2 else [capping, booking])
        statuses = sorted(status for status, _ in results)
        booking_id = race_world.scalar("SELECT b.id FROM bookings b JOIN bed_nights n ON n.booking_id = b.id "
                                  "WHERE n.bed_id = :bed LIMIT 1", bed=bed_ids[0])
        capped_at = race_world.scalar("SELECT min(seq) FROM test_commits WHERE tbl = 'seasons' AND row_id = :id "
                                 "AND seq > :before", id=season_id, before=before)
        prices = {p for (p,) in race_world.rows("SELECT price_ore FROM bed_prices WHERE bed_id = ANY(:ids)",
            ids=bed_ids)}
        problems = []
        if statuses != [200, 201]:
            problems.append(f"answers {statuses}: {results}")
        if prices != {CAP}:
            problems.append(f"prices after the cap: {prices}")
        first = "-"
        if booking_id is not None and capped_at is not None:
            sold = {p for (p,) in race_world.rows("SELECT price_ore FROM bed_nights WHERE booking_id = :id",
                id=booking_id)}
            first = "booking" if _committed_at(race_world, "bookings", booking_id) < capped_at else "cap"
            if first == "cap" and max(sold) > CAP:
                problems.append(f"the cap of {CAP} committed first, yet bed-nights were sold at {sold}")
            if first == "booking" and sold != {OLD}:
                problems.append(f"the booking committed first at {sold}")
        if problems:
            failures.append(f"round {round_}: " + "; ".join(problems))
        print(f"[f] round {round_}: answers {statuses}, committed first: {first}")
    assert failures == []
