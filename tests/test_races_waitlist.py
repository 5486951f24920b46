"""Waiting-list offers raced over HTTP against gunicorn with 4 workers, on PostgreSQL (READ COMMITTED).

Each round a fresh one-bed listing is booked by one delegation, a second delegation waits for it, and the
first cancels: the bed is offered to the second. Then, released together by a barrier, 10 rounds each:

(a) POST /waitlist/{id}/accept and POST /waitlist/{id}/cancel of the same entry;
(b) POST /waitlist/{id}/accept and the expiry job (`expire_holds`, run in this process with a clock past
    the offer's time: the server's clock is still inside it).

Exactly one wins; the loser answers 409 `state_changed` (the job: expires nothing); the entry, the offer's
booking and its bed-nights agree with the winner, checked through the API and the database.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.helpers import YEAR
from tests.live_server import IN_CI, GunicornServer, fresh_postgres_database, postgres_reachable, race

pytestmark = pytest.mark.serial  # gunicorn races: `make test` runs them alone

ROUNDS = 10
FIRST_NIGHT = date(YEAR, 6, 20)
CHECK_IN, CHECK_OUT = date(YEAR, 6, 21), date(YEAR, 6, 23)
PASSWORD = "correct-horse-battery"


class World:
    def __init__(self, url, app, server):
        self.url, self.app, self.server = url, app, server
        self.engine = create_engine(url)
        self.counter = 0

    def rows(self, sql: str, **params):
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    if not postgres_reachable():
        if IN_CI:
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is not reachable, and CI=true makes its tests mandatory.")
        pytest.skip("PostgreSQL is not reachable here (its tests are mandatory with CI=true).")
    from app import create_app
    from app.extensions import db
    from app.services import accounts, delegations, seasons
    from app.services.base import Actor

    with fresh_postgres_database("sangplats_races_waitlist") as url:
        app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            now = datetime.now(UTC)
            admin = accounts.create_admin("admin@example.se", PASSWORD, "Admin")
            seasons.create_season(Actor(admin.id, "admin"), {
                "year": YEAR, "name": f"Almedalsveckan {YEAR}", "first_night": FIRST_NIGHT,
                "last_night": date(YEAR, 6, 25), "bookings_open_at": now - timedelta(days=1), "price_cap_ore": 90000,
                "max_increase_pct": 10, "strike_limit": 3, "hold_minutes": 15,
                "free_cancellation_until": FIRST_NIGHT - timedelta(days=60), "late_cancellation_refund_pct": 50,
            })
            owner = accounts.register_user("agare@example.se", PASSWORD, "Ägare", "coordinator")
            waiter = accounts.register_user("vantar@example.se", PASSWORD, "Väntar", "coordinator")
            state = {
                "admin_id": admin.id, "owner_id": owner.id, "waiter_id": waiter.id,
                "owner_delegation": delegations.create_delegation(Actor(owner.id, "coordinator"), "Först",
                                                                  "802000-1239").id,
                "waiter_delegation": delegations.create_delegation(Actor(waiter.id, "coordinator"), "Sen",
                                                                   "802000-2476").id,
                "waiter_token": accounts.issue_token(waiter),
            }
            db.session.remove()
        log = tmp_path_factory.mktemp("races_waitlist") / "gunicorn.log"
        with GunicornServer(url, workers=4, log_path=log) as server:
            w = World(url, app, server)
            w.__dict__.update(state)
            yield w
            w.engine.dispose()
        with app.app_context():
            db.engine.dispose()


def new_offer(world: World) -> dict:
    """A one-bed listing booked by the owner, the waiter on the list, the owner cancels: an offer stands."""
    from app.extensions import db
    from app.models import Booking, Season, WaitlistEntry
    from app.services import accounts, booking, cancellations, listings, pricing, vetting, waitlist
    from app.services.base import Actor

    world.counter += 1
    n = world.counter
    with world.app.app_context():
        host = accounts.register_user(f"host{n}@example.se", PASSWORD, f"Värd {n}", "host")
        host_actor = Actor(host.id, "host")
        vetting.submit_profile(host_actor, legal_name=f"Värd {n} AB", phone="+46 498 123 456",
                               address="Strandgatan 1", postal_code="621 56", right_to_rent=True)
        vetting.decide(Actor(world.admin_id, "admin"), host.id, "approve", "checked")
        listing = listings.create_listing(host_actor, title=f"Huset {n}", description="En säng.",
                                          address="Strandgatan 1", postal_code="621 56", walking_minutes=5)
        bed = listings.add_bed(host_actor, listings.add_room(host_actor, listing.id, "Rum").id, "Säng", "single")
        pricing.set_price(host_actor, bed.id, YEAR, 40000)
        season = db.session.scalars(db.select(Season).where(Season.year == YEAR)).one()
        listings.publish(host_actor, listing.id, season.terms_version)
        owner = Actor(world.owner_id, "coordinator")
        booked = booking.create_booking(owner, delegation_id=world.owner_delegation, bed_ids=[bed.id],
                                        check_in=CHECK_IN, check_out=CHECK_OUT, accept_contract=True,
                                        payment_method="invoice")
        entry = waitlist.join(Actor(world.waiter_id, "coordinator"), delegation_id=world.waiter_delegation,
                              year=YEAR, check_in=CHECK_IN, check_out=CHECK_OUT, beds=1)
        cancellations.cancel_by_guest(owner, booked.id)
        db.session.expire_all()
        entry = db.session.get(WaitlistEntry, entry.id)
        assert entry.status == "offered", entry.status
        hold = db.session.get(Booking, entry.offer_booking_id)
        offer = {"entry_id": entry.id, "booking_id": hold.id, "listing_id": listing.id, "host": host_actor,
                 "lapsed_at": hold.expires_at + timedelta(minutes=1)}
        db.session.remove()
    return offer


def retire(world: World, offer: dict) -> None:
    """Take the round's listing off the market, so that the next round's entry finds no free bed."""
    from app.extensions import db
    from app.services import listings
    with world.app.app_context():
        listings.unpublish(offer["host"], offer["listing_id"])
        db.session.remove()


def _post(url: str, token: str, body: dict):
    def send(session, _prepared):
        response = session.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, {"raw": response.text[:300]}
    return send


def _connect(base: str):
    def prepare(session):
        session.get(base + "/healthz", timeout=30)
    return prepare


def facts(world: World, offer: dict) -> tuple[str, str, set, str]:
    """(entry status through GET /waitlist, the offer booking's status through GET /bookings/{id}, its bed-night
    states in the database, the entry status in the database)."""
    auth = {"Authorization": f"Bearer {world.waiter_token}"}
    base = world.server.base_url + "/api/v1"
    listed = requests.get(base + "/waitlist", headers=auth, timeout=30).json()["entries"]
    api_entry = next(e["status"] for e in listed if e["id"] == offer["entry_id"])
    api_booking = requests.get(f"{base}/bookings/{offer['booking_id']}", headers=auth, timeout=30).json()["status"]
    states = {s for (s,) in world.rows("SELECT state FROM bed_nights WHERE booking_id = :id", id=offer["booking_id"])}
    db_entry = world.rows("SELECT status FROM waitlist_entries WHERE id = :id", id=offer["entry_id"])[0][0]
    return api_entry, api_booking, states, db_entry


EXPECTED = {  # winner -> (entry, offer booking, its bed-nights)
    "accept": ("booked", "confirmed", {"booked"}),
    "cancel": ("cancelled", "expired", {"released"}),
    "lapse": ("expired", "expired", {"released"}),
}


def _check(round_, results: dict, offer, world, failures, label):
    """results: side -> (status, body) for HTTP sides, or ("job", expired ids) for the job."""
    winners = [side for side, (status, body) in results.items()
               if status == 200 or (status == "job" and offer["booking_id"] in body)]
    losers = {side: (status, body) for side, (status, body) in results.items() if side not in winners}
    api_entry, api_booking, states, db_entry = facts(world, offer)
    problems = []
    if len(winners) != 1:
        problems.append(f"winners {winners}: {results}")
    for side, (status, body) in losers.items():
        if status != "job" and (status != 409 or body.get("code") != "state_changed"):
            problems.append(f"{side} lost with {status} {body}")
    if len(winners) == 1 and (api_entry, api_booking, states) != EXPECTED[winners[0]]:
        problems.append(f"{winners[0]} won but entry {api_entry}, booking {api_booking}, bed-nights {states}")
    if api_entry != db_entry:
        problems.append(f"the API says the entry is {api_entry}, the database {db_entry}")
    if problems:
        failures.append(f"round {round_}: " + "; ".join(problems))
    lost = {s: (st, b.get("code") if isinstance(b, dict) else b) for s, (st, b) in losers.items()}
    print(f"[{label}] round {round_}: winners {winners}, losers {lost}, entry {api_entry}, booking {api_booking}, "
          f"bed-nights {sorted(states)}")


def test_accept_racing_cancel_of_one_offer_has_one_winner(world):
    base = world.server.base_url + "/api/v1/waitlist/"
    failures = []
    for round_ in range(ROUNDS):
        offer = new_offer(world)
        sides = ["accept", "cancel"] if round_ % 2 == 0 else ["cancel", "accept"]
        calls = {"accept": (_connect(world.server.base_url),
                            _post(f"{base}{offer['entry_id']}/accept", world.waiter_token, {"accept_contract": True})),
                 "cancel": (_connect(world.server.base_url),
                            _post(f"{base}{offer['entry_id']}/cancel", world.waiter_token, {}))}
        answers = race([calls[s] for s in sides])
        _check(round_, dict(zip(sides, answers, strict=True)), offer, world, failures, "accept/cancel")
        retire(world, offer)
    assert failures == []


def test_accept_racing_the_expiry_job_has_one_winner(world):
    from app.extensions import db
    from app.services.jobs import expire_holds
    base = world.server.base_url + "/api/v1/waitlist/"
    failures = []
    for round_ in range(ROUNDS):
        offer = new_offer(world)

        def job(_session, _prepared, offer=offer):
            with world.app.app_context():
                try:
                    return "job", expire_holds(now=offer["lapsed_at"])
                finally:
                    db.session.remove()

        def warm(_session):
            with world.app.app_context():  # a pooled connection ready before the start
                db.session.execute(text("SELECT 1"))
                db.session.remove()
        answers = race([(_connect(world.server.base_url),
                         _post(f"{base}{offer['entry_id']}/accept", world.waiter_token, {"accept_contract": True})),
                        (warm, job)])
        _check(round_, {"accept": answers[0], "lapse": answers[1]}, offer, world, failures, "accept/job")
        retire(world, offer)
    assert failures == []
