"""Issue 12, orders under concurrency: many coordinators release overlapping multi-listing orders together.

Over HTTP against gunicorn with 4 workers, on SQLite and on PostgreSQL (READ COMMITTED). Each round has
four fresh listings of three beds; 12 coordinators each send an order of 2-3 parts (1-3 beds of a listing
each, card or invoice) for the same two nights, released together by a barrier. Then, through the API and
the database: every answer is 201 or 409 `bed_nights_taken` (whose conflicts are bed-nights it asked for),
no bed-night is in two bookings, every 201's bookings are all there with exactly the lines it asked for,
every 409 left nothing, and the database holds exactly what the 201s promised.
"""
from __future__ import annotations

import random
from collections import Counter as Tally
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from tests.helpers import YEAR, valid_organisation_number
from tests.live_server import IN_CI, GunicornServer, fresh_postgres_database, migrate, postgres_reachable, race

pytestmark = pytest.mark.serial  # gunicorn races: `make test` runs them alone

ROUNDS = 10
COORDINATORS = 12
LISTINGS_PER_ROUND = 4
BEDS_PER_LISTING = 3
CHECK_IN = date(YEAR, 6, 21)
CHECK_OUT = date(YEAR, 6, 23)
NIGHTS = [CHECK_IN, CHECK_IN + timedelta(days=1)]
PASSWORD = "correct-horse-battery"
SEED = 20270621


def seed(url: str) -> tuple[list[list[list[int]]], list[tuple[str, int]]]:
    """An open season without practical organisation limits, ROUNDS x 4 listings of 3 beds, 12 coordinators."""
    from app import create_app
    from app.extensions import db
    from app.services import accounts, delegations, listings, pricing, seasons, vetting
    from app.services.base import Actor

    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        admin = Actor(accounts.create_admin("admin@example.se", PASSWORD, "Admin").id, "admin")
        season = seasons.create_season(admin, {
            "year": YEAR, "name": f"Almedalsveckan {YEAR}", "first_night": date(YEAR, 6, 20),
            "last_night": date(YEAR, 6, 25), "bookings_open_at": datetime.now(UTC) - timedelta(days=1),
            "price_cap_ore": 90000, "max_increase_pct": 10, "strike_limit": 3, "hold_minutes": 15,
            "free_cancellation_until": date(YEAR, 4, 20), "late_cancellation_refund_pct": 50,
            "max_beds_per_organisation": 100000, "max_open_holds": 1000,
        })
        rounds = []
        for r in range(ROUNDS):
            round_listings = []
            for n in range(LISTINGS_PER_ROUND):
                host = accounts.register_user(f"host{r}-{n}@example.se", PASSWORD, f"Värd {r}-{n}", "host")
                actor = Actor(host.id, "host")
                vetting.submit_profile(actor, legal_name=f"Värd {r}-{n} AB", phone="+46 498 123 456",
                                       address="Strandgatan 1", postal_code="621 56", right_to_rent=True)
                vetting.decide(admin, host.id, "approve", "checked")
                listing = listings.create_listing(actor, title=f"Huset {r}-{n}", description="Sängar.",
                                                  address="Strandgatan 1", postal_code="621 56", walking_minutes=5)
                room = listings.add_room(actor, listing.id, "Rum 1")
                bed_ids = []
                for b in range(BEDS_PER_LISTING):
                    bed = listings.add_bed(actor, room.id, f"Säng {b + 1}", "single")
                    pricing.set_price(actor, bed.id, YEAR, 40000 + 1000 * b)
                    bed_ids.append(bed.id)
                listings.publish(actor, listing.id, season.terms_version)
                round_listings.append(bed_ids)
            rounds.append(round_listings)
        coordinators = []
        for c in range(COORDINATORS):
            user = accounts.register_user(f"samordnare{c}@example.se", PASSWORD, f"Samordnare {c}", "coordinator")
            delegation = delegations.create_delegation(Actor(user.id, "coordinator"), f"Förening {c}",
                                                       valid_organisation_number(9000 + c))
            coordinators.append((accounts.issue_token(user), delegation.id))
        db.session.remove()
        db.engine.dispose()
    return rounds, coordinators


def random_order(rng: random.Random, listings: list[list[int]]) -> list[list[int]]:
    """2-3 parts, each 1-3 beds of its own listing."""
    chosen = rng.sample(listings, rng.choice((2, 3)))
    return [sorted(rng.sample(beds, rng.randint(1, len(beds)))) for beds in chosen]


def racer(base_url: str, token: str, body: dict):
    def prepare(session):
        session.headers["Authorization"] = f"Bearer {token}"
        session.get(base_url + "/healthz", timeout=30)  # connect before the start

    def send(session, _prepared):
        response = session.post(base_url + "/api/v1/orders", json=body, timeout=60)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, {"raw": response.text[:300]}

    return prepare, send


def examine(engine, base_url, round_beds, calls, results) -> list[str]:
    import requests
    problems = []
    statuses = Tally(status for status, _ in results)
    if set(statuses) - {201, 409}:
        problems.append(f"unexpected answers {dict(statuses)}: {[r for r in results if r[0] not in (201, 409)]}")
    if not statuses[201]:
        problems.append("no order was formed")
    promised: dict[tuple[int, date], int] = {}  # bed-night -> booking id, from the 201s
    promised_orders = set()
    promised_bookings = set()
    for (token, _delegation_id, body), (status, answer) in zip(calls, results, strict=True):
        asked = {(bed, night) for part in body["parts"] for bed in part["bed_ids"] for night in NIGHTS}
        if status == 409:
            if answer.get("code") != "bed_nights_taken" or not answer.get("conflicts"):
                problems.append(f"a 409 that is not bed_nights_taken with conflicts: {answer}")
            elif not {(c["bed_id"], date.fromisoformat(c["night"])) for c in answer["conflicts"]} <= asked:
                problems.append(f"a 409 names bed-nights it did not ask for: {answer['conflicts']}")
            continue
        if status != 201:
            continue
        promised_orders.add(answer["id"])
        got = {}
        for booking in answer["bookings"]:
            promised_bookings.add(booking["id"])
            for line in booking["lines"]:
                got[(line["bed_id"], date.fromisoformat(line["night"]))] = booking["id"]
        if set(got) != asked or len(answer["bookings"]) != len(body["parts"]):
            problems.append(f"order {answer['id']} answered other lines than it asked for")
        for pair, booking_id in got.items():
            if pair in promised:
                problems.append(f"bed-night {pair} promised to bookings {promised[pair]} and {booking_id}")
            promised[pair] = booking_id
        shown = requests.get(f"{base_url}/api/v1/orders/{answer['id']}", timeout=30,
                             headers={"Authorization": f"Bearer {token}"})
        if shown.status_code != 200 or [b["id"] for b in shown.json()["bookings"]] != [
                b["id"] for b in answer["bookings"]]:
            problems.append(f"GET /orders/{answer['id']} does not answer its bookings: {shown.text[:300]}")
    beds = [bed for listing in round_beds for bed in listing]
    with engine.connect() as conn:
        occupied = conn.execute(text(
            "SELECT n.bed_id, n.night, n.booking_id FROM bed_nights n WHERE n.state IN ('held', 'booked') "
            "AND n.bed_id IN (" + ",".join(map(str, beds)) + ")")).all()
        bookings = conn.execute(text(
            "SELECT b.id, b.order_id FROM bookings b WHERE b.id IN (SELECT n.booking_id FROM bed_nights n "
            "WHERE n.bed_id IN (" + ",".join(map(str, beds)) + "))")).all()
        orders_in_db = {row[0] for row in conn.execute(text(
            "SELECT DISTINCT o.id FROM orders o JOIN bookings b ON b.order_id = o.id "
            "WHERE b.id IN (" + (",".join(str(b[0]) for b in bookings) or "0") + ")"))}
        empty_orders = conn.execute(text(
            "SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM bookings b WHERE b.order_id = o.id)"
        )).scalar()
    pairs = Tally((bed, night if isinstance(night, date) else date.fromisoformat(str(night)))
                  for bed, night, _ in occupied)
    doubled = [pair for pair, n in pairs.items() if n > 1]
    if doubled:
        problems.append(f"bed-nights in two bookings: {doubled}")
    in_db = {(bed, night if isinstance(night, date) else date.fromisoformat(str(night))): booking_id
             for bed, night, booking_id in occupied}
    if in_db != promised:
        problems.append(f"the database holds {len(in_db)} bed-nights, the 201s promised {len(promised)}: "
                        f"{set(in_db.items()) ^ set(promised.items())}")
    if {b[0] for b in bookings} != promised_bookings or orders_in_db != promised_orders:
        problems.append(f"bookings {sorted(b[0] for b in bookings)} / orders {sorted(orders_in_db)} in the "
                        f"database, the 201s promised {sorted(promised_bookings)} / {sorted(promised_orders)}")
    if any(order_id is None for _, order_id in bookings):
        problems.append("a booking of the round belongs to no order")
    if empty_orders:
        problems.append(f"{empty_orders} orders without bookings")
    return problems


def require_postgres() -> None:
    if not postgres_reachable():
        if IN_CI:
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is not reachable, and CI=true makes its tests mandatory.")
        pytest.skip("PostgreSQL is not reachable here (its tests are mandatory with CI=true).")


@pytest.fixture(params=["sqlite", "postgresql"])
def race_database(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'orders.db'}"
        migrate(url)
        yield url
        return
    require_postgres()
    with fresh_postgres_database("sangplats_orders") as url:
        yield url


def test_overlapping_orders_released_together_are_all_or_nothing(race_database, tmp_path):
    rounds, coordinators = seed(race_database)
    rng = random.Random(SEED)
    engine = create_engine(race_database)
    failures = []
    with GunicornServer(race_database, workers=4, log_path=tmp_path / "gunicorn.log") as server:
        for round_, round_beds in enumerate(rounds):
            calls = []
            for token, delegation_id in coordinators:
                calls.append((token, delegation_id, {
                    "delegation_id": delegation_id, "check_in": CHECK_IN.isoformat(),
                    "check_out": CHECK_OUT.isoformat(), "accept_contract": True,
                    "payment_method": rng.choice(("card", "invoice")),
                    "parts": [{"bed_ids": beds} for beds in random_order(rng, round_beds)]}))
            results = race([racer(server.base_url, token, body) for token, _, body in calls])
            problems = examine(engine, server.base_url, round_beds, calls, results)
            print(f"round {round_}: answers {dict(Tally(status for status, _ in results))}")
            if problems:
                failures.append(f"round {round_}: " + "; ".join(problems))
        if failures:
            failures.append(server.log_tail())
    engine.dispose()
    assert failures == []
