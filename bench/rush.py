"""The booking-rush benchmark: `python -m bench.rush [--quick] [--only sqlite|postgres]`.

Seeds a season at Gotland scale (2,000 listings, 10,000 beds) into a fresh SQLite file and a
fresh PostgreSQL database in turn, serves each with gunicorn (4 sync workers) and measures:

1. baseline   16 clients on GET /healthz for 10 s (3 s with --quick);
2. rush       64 coordinators, released together by a barrier, each making 15 attempts to book
              one bed-night out of a scarce set of 60 (10 beds x 6 nights of one listing);
3. block      the same 64 booking random stays of 1-4 beds x 1-4 nights across 50 listings;
4. search     varied GET /api/v1/availability queries (the first page), one at a time (latency, not load);
5. groups     GET /api/v1/availability/groups for 12 beds over varied stays, one at a time;
6. orders     the 64 again, each placing orders of 2-3 parts (1-3 beds each) over 50 other listings.

Prints a JSON document and a table and writes bench/results/latest.json shaped
{"sqlite": {...}, "postgres": {...}}. See bench/README.md for what the figures mean.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.live_server import (  # noqa: E402
    GunicornServer,
    fresh_postgres_database,
    migrate,
    postgres_reachable,
)

RESULTS = ROOT / "bench" / "results" / "latest.json"
YEAR = 2027
FIRST_NIGHT = date(2027, 6, 20)
LAST_NIGHT = date(2027, 6, 27)  # eight nights, Sunday to Sunday
SCARCE_NIGHTS = 6
LISTINGS = 2000
TOTAL_BEDS = 10_000
BLOCK_LISTINGS = 50
ORDER_LISTINGS = 50
ORDER_ATTEMPTS = 10
CLIENTS = 64
ATTEMPTS = 15
BASELINE_CLIENTS = 16
PASSWORD_FOR_ALL = "bench-password-not-used"
GROUP_BEDS = 12
TARGETS = {"ratio": 0.40, "rush_p99_ms": 300.0, "sellout_s": 1.0, "search_p95_ms": 20.0, "groups_p95_ms": 50.0}


# ---------------------------------------------------------------------------------------------
# Seeding at Gotland scale
# ---------------------------------------------------------------------------------------------


def organisation_number(i: int) -> str:
    """A valid organisation number of its own for coordinator i: the hoarding limits count per number."""
    from stdnum import luhn
    base = f"{802100000 + i:09d}"
    return f"{base[:6]}-{base[6:]}{luhn.calc_check_digit(base)}"


def _bed_counts(rng: random.Random) -> list[int]:
    """Beds per listing: the scarce listing has 10, the 50 block and 50 order listings 8, the rest 1-9 (10,000 in
    all)."""
    rest = LISTINGS - 1 - BLOCK_LISTINGS - ORDER_LISTINGS
    remaining = TOTAL_BEDS - 10 - 8 * (BLOCK_LISTINGS + ORDER_LISTINGS)
    counts = [remaining // rest] * rest
    for i in range(remaining - sum(counts)):
        counts[i] += 1
    for _ in range(4 * rest):  # spread sizes out, keeping the total
        a, b = rng.randrange(rest), rng.randrange(rest)
        if counts[a] > 1 and counts[b] < 9:
            counts[a] -= 1
            counts[b] += 1
    return [10] + [8] * (BLOCK_LISTINGS + ORDER_LISTINGS) + counts


def seed(database_url: str, rng: random.Random) -> dict:
    """The season, admin and coordinators through the services; the bulk of hosts and beds by Core inserts."""
    from sqlalchemy import func, insert, select, text

    from app import create_app
    from app.extensions import db
    from app.models import (
        Bed,
        BedNight,
        BedPrice,
        HostProfile,
        Listing,
        OfferAcceptance,
        Room,
        User,
    )
    from app.services import accounts, delegations, seasons
    from app.services.base import Actor
    from app.services.passwords import hash_password

    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url})
    started = time.perf_counter()
    with app.app_context():
        now = datetime.now(UTC)
        admin = accounts.create_admin("admin@bench.example.se", "bench-admin-password", "Bench Admin")
        admin_actor = Actor(admin.id, "admin")
        season = seasons.create_season(admin_actor, {
            "year": YEAR, "name": f"Almedalsveckan {YEAR}", "first_night": FIRST_NIGHT, "last_night": LAST_NIGHT,
            "bookings_open_at": now - timedelta(hours=1), "price_cap_ore": 90000, "max_increase_pct": 10,
            "strike_limit": 3, "hold_minutes": 15, "free_cancellation_until": FIRST_NIGHT - timedelta(days=60),
            "late_cancellation_refund_pct": 50,
        })
        season_id, terms_version = season.id, season.terms_version
        password_hash = hash_password(PASSWORD_FOR_ALL)  # one hash for all bulk users: nobody signs in

        def bulk(model, rows: list[dict]) -> list[int]:
            if not rows:
                return []
            result = db.session.execute(insert(model).returning(model.id, sort_by_parameter_order=True), rows)
            return list(result.scalars())

        counts = _bed_counts(rng)
        hosts = 1600
        host_ids = bulk(User, [{"email": f"vard{i}@bench.example.se", "password_hash": password_hash,
                                "name": f"Värd {i}", "role": "host", "locale": "sv", "created_at": now,
                                "session_version": 1, "token_version": 1} for i in range(hosts)])
        db.session.execute(insert(HostProfile), [{
            "user_id": uid, "legal_name": f"Värd {i} AB", "phone": "+46 498 123 456",
            "address": f"Strandgatan {i}", "postal_code": f"62{rng.randint(1, 4)} {rng.randint(10, 99)}",
            "right_to_rent": True, "vetting_status": "approved", "strikes": 0, "submitted_at": now,
            "verified_since": now, "decided_at": now, "decision_reason": "bench",
            "calendar_token": secrets.token_urlsafe(24)} for i, uid in enumerate(host_ids)])
        listing_ids = bulk(Listing, [{
            "host_id": host_ids[i % hosts], "title": f"Boende {i} i Visby", "description": "Nära Almedalen.",
            "address": f"Gatan {i}", "postal_code": "621 56",
            "walking_minutes": 5 if i == 0 else min(90, int(rng.expovariate(1 / 20))),
            "published": True, "accepted_terms_version": terms_version, "offer_accepted_at": now,
            "created_at": now} for i in range(LISTINGS)])
        db.session.execute(insert(OfferAcceptance), [
            {"listing_id": lid, "terms_version": terms_version, "actor_id": host_ids[i % hosts], "accepted_at": now}
            for i, lid in enumerate(listing_ids)])
        room_specs = []  # (listing index, beds in the room)
        for i, n in enumerate(counts):
            per_room = 5 if n == 10 else 4
            while n > 0:
                room_specs.append((i, min(per_room, n)))
                n -= per_room
        room_ids = bulk(Room, [{"listing_id": listing_ids[i], "name": f"Rum {k + 1}"}
                               for k, (i, _) in enumerate(room_specs)])
        bed_rows, bed_listing = [], []
        for room_id, (i, n) in zip(room_ids, room_specs, strict=False):
            for b in range(n):
                bed_rows.append({"room_id": room_id, "label": f"Säng {b + 1}",
                                 "kind": rng.choice(("single", "single", "double_half", "bunk", "sofa"))})
                bed_listing.append(i)
        bed_ids = bulk(Bed, bed_rows)
        db.session.execute(insert(BedPrice), [
            {"bed_id": bid, "season_id": season_id, "price_ore": rng.randrange(25000, 85001, 500), "updated_at": now}
            for bid in bed_ids])
        beds_of: dict[int, list[int]] = {}
        for bid, i in zip(bed_ids, bed_listing, strict=False):
            beds_of.setdefault(i, []).append(bid)
        # Some hosts keep nights for themselves: about 15 % of the other listings' bed-nights are blocked.
        season_nights = (LAST_NIGHT - FIRST_NIGHT).days + 1
        blocks = []
        for i in range(1 + BLOCK_LISTINGS + ORDER_LISTINGS, LISTINGS):
            for bid in beds_of[i]:
                if rng.random() < 0.3:
                    start = rng.randrange(season_nights)
                    for d in range(start, min(season_nights, start + rng.randint(2, 6))):
                        blocks.append({"bed_id": bid, "night": FIRST_NIGHT + timedelta(days=d),
                                       "state": "host_block", "created_at": now})
        db.session.execute(insert(BedNight), blocks)
        coordinator_ids = bulk(User, [{"email": f"samordnare{i}@bench.example.se", "password_hash": password_hash,
                                       "name": f"Samordnare {i}", "role": "coordinator", "locale": "sv",
                                       "created_at": now, "session_version": 1, "token_version": 1}
                                      for i in range(CLIENTS)])
        db.session.commit()
        coordinators = []
        for i, uid in enumerate(coordinator_ids):
            delegation = delegations.create_delegation(Actor(uid, "coordinator"), f"Förening {i}",
                                                       organisation_number(i))
            coordinators.append((accounts.issue_token(db.session.get(User, uid)), delegation.id))
        db.session.commit()
        db.session.execute(text("ANALYZE"))  # fresh statistics after a bulk load, as any operator would
        db.session.commit()
        beds_total = db.session.scalar(select(func.count(Bed.id)))
        listings_total = db.session.scalar(select(func.count(Listing.id)))
        db.session.remove()
        db.engine.dispose()
    scarce_beds = beds_of[0]
    return {
        "coordinators": coordinators,
        "scarce": [(bid, FIRST_NIGHT + timedelta(days=d)) for bid in scarce_beds for d in range(SCARCE_NIGHTS)],
        "block_listings": [beds_of[i] for i in range(1, 1 + BLOCK_LISTINGS)],
        "order_listings": [beds_of[i] for i in range(1 + BLOCK_LISTINGS, 1 + BLOCK_LISTINGS + ORDER_LISTINGS)],
        "beds": beds_total, "listings": listings_total, "blocked_bed_nights": len(blocks),
        "seed_s": round(time.perf_counter() - started, 1),
    }


# ---------------------------------------------------------------------------------------------
# HTTP clients
# ---------------------------------------------------------------------------------------------


class Client:
    """One keep-alive connection (http.client reconnects by itself when the server closes it)."""

    def __init__(self, port: int, token: str | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        headers = dict(self.headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()


class Record:
    """What one phase saw: per request (start, end, status, body-or-None)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rows: list[tuple[float, float, int, dict | None]] = []
        self.exceptions: list[str] = []
        self.t0: float | None = None

    def add(self, start: float, end: float, status: int, body: dict | None) -> None:
        with self.lock:
            self.rows.append((start, end, status, body))

    def failed(self, error: BaseException) -> None:
        with self.lock:
            self.exceptions.append(repr(error))


def run_clients(n: int, work: Callable[[int, Record], None]) -> tuple[Record, float]:
    """Start n threads, release them together; returns the record and the wall time from release."""
    record = Record()
    barrier = threading.Barrier(n, action=lambda: setattr(record, "t0", time.perf_counter()))

    def thread_main(i: int) -> None:
        barrier.wait(timeout=300)
        work(i, record)

    threads = [threading.Thread(target=thread_main, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    end = max((r[1] for r in record.rows), default=record.t0 or time.perf_counter())
    return record, end - (record.t0 or end)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return round(ordered[k], 1)


def latency(record: Record) -> dict:
    ms = [(end - start) * 1000 for start, end, _, _ in record.rows]
    return {"p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "p99_ms": pct(ms, 99),
            "max_ms": round(max(ms), 1) if ms else None}


# ---------------------------------------------------------------------------------------------
# Phases
# ---------------------------------------------------------------------------------------------


def phase_baseline(port: int, seconds: float) -> dict:
    def work(i: int, record: Record) -> None:
        client = Client(port)
        deadline = record.t0 + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                status, _ = client.call("GET", "/healthz")
            except (http.client.HTTPException, OSError) as error:
                record.failed(error)
                continue
            record.add(start, time.perf_counter(), status, None)
        client.close()

    record, wall = run_clients(BASELINE_CLIENTS, work)
    statuses = Tally(r[2] for r in record.rows)
    return {"clients": BASELINE_CLIENTS, "requests": len(record.rows), "seconds": round(wall, 2),
            "rps": round(len(record.rows) / wall, 1), **latency(record),
            "statuses": dict(statuses),
            "errors": len(record.exceptions) + sum(n for s, n in statuses.items() if s != 200)}


def _book(client: Client, record: Record, delegation_id: int, bed_ids: list[int], check_in: date,
          check_out: date) -> int | None:
    start = time.perf_counter()
    try:
        status, raw = client.call("POST", "/api/v1/bookings", {
            "delegation_id": delegation_id, "bed_ids": bed_ids, "check_in": check_in.isoformat(),
            "check_out": check_out.isoformat(), "accept_contract": True, "payment_method": "invoice"})
    except (http.client.HTTPException, OSError) as error:
        record.failed(error)
        return None
    end = time.perf_counter()
    try:
        body = json.loads(raw)
    except ValueError:
        body = {"raw": raw[:300].decode("utf-8", "replace")}
    record.add(start, end, status, body)
    return status


def booking_summary(record: Record, wall: float) -> dict:
    statuses = Tally(r[2] for r in record.rows)
    bad_409 = sum(1 for r in record.rows if r[2] == 409 and not (
        r[3].get("code") == "bed_nights_taken" and r[3].get("conflicts")))
    sold = sum(len(r[3].get("lines", [])) for r in record.rows if r[2] == 201)
    errors = len(record.exceptions) + sum(n for s, n in statuses.items() if s not in (201, 409)) + bad_409
    samples = [r[3] for r in record.rows if r[2] not in (201, 409)][:3] + record.exceptions[:3]
    return {"requests": len(record.rows) + len(record.exceptions), "seconds": round(wall, 2),
            "rps": round(len(record.rows) / wall, 1) if wall else None, **latency(record),
            "statuses": {str(k): v for k, v in sorted(statuses.items())}, "bed_nights_sold": sold,
            "errors": errors, "error_samples": samples}


def phase_rush(port: int, world: dict) -> dict:
    """64 coordinators, 15 single bed-night attempts each, over the same 60 scarce bed-nights."""
    scarce = world["scarce"]

    def work(i: int, record: Record) -> None:
        token, delegation_id = world["coordinators"][i]
        client = Client(port, token)
        order = random.Random(1000 + i).sample(scarce, ATTEMPTS)  # a sensible client never retries a 409
        for bed_id, night in order:
            _book(client, record, delegation_id, [bed_id], night, night + timedelta(days=1))
        client.close()

    record, wall = run_clients(CLIENTS, work)
    result = booking_summary(record, wall)
    wins = sorted(r[1] for r in record.rows if r[2] == 201)
    result["scarce_bed_nights"] = len(scarce)
    result["sellout_s"] = round(wins[-1] - record.t0, 3) if len(wins) == len(scarce) else None
    result["attempts_until_sellout"] = (sum(1 for r in record.rows if r[1] <= wins[-1])
                                        if len(wins) == len(scarce) else None)
    result["_rows"] = record.rows
    return result


def phase_block(port: int, world: dict, attempts: int) -> dict:
    """The same 64 coordinators booking stays of 1-4 beds x 1-4 nights across 50 listings."""
    nights = (LAST_NIGHT - FIRST_NIGHT).days + 1

    def work(i: int, record: Record) -> None:
        token, delegation_id = world["coordinators"][i]
        client = Client(port, token)
        rng = random.Random(2000 + i)
        for _ in range(attempts):
            beds = rng.choice(world["block_listings"])
            length = rng.randint(1, 4)
            check_in = FIRST_NIGHT + timedelta(days=rng.randrange(nights - length + 1))
            _book(client, record, delegation_id, rng.sample(beds, rng.randint(1, 4)), check_in,
                  check_in + timedelta(days=length))
        client.close()

    record, wall = run_clients(CLIENTS, work)
    result = booking_summary(record, wall)
    result["_rows"] = record.rows
    return result


def phase_orders(port: int, world: dict, attempts: int) -> dict:
    """The 64 again, released together, each placing orders of 2-3 parts (1-3 beds each, one listing per part)
    for stays of 1-4 nights across 50 listings of their own: all parts booked or none."""
    nights = (LAST_NIGHT - FIRST_NIGHT).days + 1

    def work(i: int, record: Record) -> None:
        token, delegation_id = world["coordinators"][i]
        client = Client(port, token)
        rng = random.Random(5000 + i)
        for _ in range(attempts):
            listings = rng.sample(world["order_listings"], rng.randint(2, 3))
            parts = [sorted(rng.sample(beds, rng.randint(1, 3))) for beds in listings]
            length = rng.randint(1, 4)
            check_in = FIRST_NIGHT + timedelta(days=rng.randrange(nights - length + 1))
            check_out = check_in + timedelta(days=length)
            start = time.perf_counter()
            try:
                status, raw = client.call("POST", "/api/v1/orders", {
                    "delegation_id": delegation_id, "check_in": check_in.isoformat(),
                    "check_out": check_out.isoformat(), "parts": [{"bed_ids": part} for part in parts],
                    "accept_contract": True, "payment_method": "invoice"})
            except (http.client.HTTPException, OSError) as error:
                record.failed(error)
                continue
            end = time.perf_counter()
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"raw": raw[:300].decode("utf-8", "replace")}
            if status == 201:
                # what the 201 promises, for the check against the database: every bed of every part, every night
                body["lines"] = [{"bed_id": bed_id, "night": (check_in + timedelta(days=d)).isoformat()}
                                 for part in parts for bed_id in part for d in range(length)]
                if len(body.get("bookings", [])) != len(parts):
                    body["wrong_parts"] = True
            record.add(start, end, status, body)
        client.close()

    record, wall = run_clients(CLIENTS, work)
    result = booking_summary(record, wall)
    wrong = sum(1 for r in record.rows if r[2] == 201 and r[3].get("wrong_parts"))
    result["errors"] += wrong
    result["orders_with_missing_bookings"] = wrong
    result["_rows"] = record.rows
    return result


def _stay(rng: random.Random) -> dict:
    """A random stay of 1-8 nights inside the season, sometimes with a walking or price limit."""
    nights = (LAST_NIGHT - FIRST_NIGHT).days + 1
    length = min(rng.choice((1, 2, 3, 4, 5, 8)), nights)
    check_in = FIRST_NIGHT + timedelta(days=rng.randrange(nights - length + 1))
    params = {"year": YEAR, "check_in": check_in.isoformat(),
              "check_out": (check_in + timedelta(days=length)).isoformat()}
    if rng.random() < 0.5:
        params["max_walking_minutes"] = rng.choice((5, 10, 15, 20, 30, 45))
    if rng.random() < 0.4:
        params["max_price_ore"] = rng.choice((35000, 50000, 65000, 80000))
    return params


def phase_groups(port: int, queries: int) -> dict:
    """Group proposals for 12 beds over varied stays, one at a time: the latency a coordinator sees."""
    rng = random.Random(4000)
    client = Client(port)
    record = Record()
    record.t0 = time.perf_counter()
    proposals_seen = []
    for _ in range(queries):
        params = {**_stay(rng), "beds": GROUP_BEDS}
        path = "/api/v1/availability/groups?" + "&".join(f"{k}={v}" for k, v in params.items())
        start = time.perf_counter()
        try:
            status, raw = client.call("GET", path)
        except (http.client.HTTPException, OSError) as error:
            record.failed(error)
            continue
        record.add(start, time.perf_counter(), status, None)
        if status == 200:
            proposals_seen.append(len(json.loads(raw)["proposals"]))
    client.close()
    statuses = Tally(r[2] for r in record.rows)
    return {"queries": queries, "beds": GROUP_BEDS, "seconds": round(time.perf_counter() - record.t0, 2),
            **latency(record), "statuses": dict(statuses),
            "median_proposals_returned": statistics.median(proposals_seen) if proposals_seen else None,
            "errors": len(record.exceptions) + sum(n for s, n in statuses.items() if s != 200)}


def phase_search(port: int, queries: int) -> dict:
    """Varied availability queries (the first page), one at a time: the latency a coordinator sees."""
    rng = random.Random(3000)
    client = Client(port)
    record = Record()
    record.t0 = time.perf_counter()
    results_seen = []
    for _ in range(queries):
        params = {**_stay(rng), "beds": rng.choice((1, 2, 2, 3, 4, 5, 6, 8))}
        path = "/api/v1/availability?" + "&".join(f"{k}={v}" for k, v in params.items())
        start = time.perf_counter()
        try:
            status, raw = client.call("GET", path)
        except (http.client.HTTPException, OSError) as error:
            record.failed(error)
            continue
        end = time.perf_counter()
        record.add(start, end, status, None)
        if status == 200:
            results_seen.append(len(json.loads(raw)["results"]))
    client.close()
    statuses = Tally(r[2] for r in record.rows)
    wall = time.perf_counter() - record.t0
    return {"queries": queries, "seconds": round(wall, 2), **latency(record), "statuses": dict(statuses),
            "median_listings_returned": statistics.median(results_seen) if results_seen else None,
            "errors": len(record.exceptions) + sum(n for s, n in statuses.items() if s != 200)}


# ---------------------------------------------------------------------------------------------
# Verification against the database
# ---------------------------------------------------------------------------------------------


def verify(database_url: str, rows: list) -> dict:
    """Duplicates in bed_nights, and whether the database holds exactly what the 201s promised."""
    from sqlalchemy import create_engine, func, select

    from app.models import OCCUPYING_STATES, BedNight, Booking

    promised = Tally()
    for _, _, status, body in rows:
        if status == 201:
            promised.update((int(line["bed_id"]), date.fromisoformat(line["night"])) for line in body["lines"])
    engine = create_engine(database_url)
    occupying = BedNight.state.in_(OCCUPYING_STATES)
    with engine.connect() as conn:
        duplicates = conn.execute(select(func.count()).select_from(
            select(BedNight.bed_id, BedNight.night).where(occupying)
            .group_by(BedNight.bed_id, BedNight.night).having(func.count() > 1).subquery())).scalar_one()
        booked = {(b, n) for b, n in conn.execute(
            select(BedNight.bed_id, BedNight.night).where(BedNight.state == "booked"))}
        bad_totals = conn.execute(select(func.count()).select_from(
            select(Booking.id).join(BedNight, BedNight.booking_id == Booking.id)
            .group_by(Booking.id, Booking.total_ore)
            .having(Booking.total_ore != func.sum(BedNight.price_ore)).subquery())).scalar_one()
    engine.dispose()
    return {"duplicates": duplicates + sum(1 for n in promised.values() if n > 1),
            "db_mismatch": len(booked ^ set(promised)), "bad_totals": bad_totals}


# ---------------------------------------------------------------------------------------------
# One backend, all phases
# ---------------------------------------------------------------------------------------------


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
        migrate(url)
        yield url
    else:
        with fresh_postgres_database("sangplats_bench") as url:
            yield url


def run_backend(kind: str, quick: bool, workdir: Path) -> dict:
    print(f"== {kind}: seeding", flush=True)
    with database(kind, workdir) as url:
        world = seed(url, random.Random(42))
        print(f"   {world['listings']} listings, {world['beds']} beds, {world['blocked_bed_nights']} blocked "
              f"bed-nights, seeded in {world['seed_s']} s", flush=True)
        log = workdir / f"gunicorn-{kind}.log"
        with GunicornServer(url, workers=4, log_path=log) as server:
            port = server.port
            print("   baseline", flush=True)
            baseline = phase_baseline(port, 3.0 if quick else 10.0)
            print("   opening rush", flush=True)
            rush = phase_rush(port, world)
            print("   block rush", flush=True)
            block = phase_block(port, world, 8 if quick else ATTEMPTS)
            print("   search", flush=True)
            search = phase_search(port, 60 if quick else 300)
            print("   groups", flush=True)
            groups = phase_groups(port, 60 if quick else 300)
            print("   order rush", flush=True)
            orders = phase_orders(port, world, 5 if quick else ORDER_ATTEMPTS)
        checks = verify(url, rush.pop("_rows") + block.pop("_rows") + orders.pop("_rows"))
    errors = baseline["errors"] + rush["errors"] + block["errors"] + search["errors"] + groups["errors"] \
        + orders["errors"] \
        + checks["db_mismatch"] \
        + checks["bad_totals"]
    result = {
        "baseline_rps": baseline["rps"], "rush_rps": rush["rps"],
        "ratio": round(rush["rps"] / baseline["rps"], 3) if baseline["rps"] and rush["rps"] else None,
        "rush_p50_ms": rush["p50_ms"], "rush_p95_ms": rush["p95_ms"], "rush_p99_ms": rush["p99_ms"],
        "sellout_s": rush["sellout_s"], "block_rps": block["rps"], "block_p99_ms": block["p99_ms"],
        "search_p50_ms": search["p50_ms"], "search_p95_ms": search["p95_ms"],
        "groups_p50_ms": groups["p50_ms"], "groups_p95_ms": groups["p95_ms"],
        "order_rps": orders["rps"], "order_p99_ms": orders["p99_ms"],
        "duplicates": checks["duplicates"], "errors": errors,
        "scale": {"listings": world["listings"], "beds": world["beds"],
                  "blocked_bed_nights": world["blocked_bed_nights"], "seed_s": world["seed_s"]},
        "phases": {"baseline": baseline, "rush": rush, "block": block, "search": search, "groups": groups,
                   "orders": orders},
        "checks": checks,
    }
    result["targets"] = {
        "no_duplicates": result["duplicates"] == 0,
        "no_errors": result["errors"] == 0,
        "ratio_at_least_40pct": result["ratio"] is not None and result["ratio"] >= TARGETS["ratio"],
        "rush_p99_under_300ms": result["rush_p99_ms"] is not None and result["rush_p99_ms"] < TARGETS["rush_p99_ms"],
        "sellout_within_1s": result["sellout_s"] is not None and result["sellout_s"] <= TARGETS["sellout_s"],
        "search_p95_at_most_20ms": (result["search_p95_ms"] is not None
                                    and result["search_p95_ms"] <= TARGETS["search_p95_ms"]),
        "groups_p95_at_most_50ms": (result["groups_p95_ms"] is not None
                                    and result["groups_p95_ms"] <= TARGETS["groups_p95_ms"]),
    }
    return result


def table(results: dict) -> str:
    kinds = [k for k in ("sqlite", "postgres") if "baseline_rps" in results.get(k, {})]
    rows = [
        ("baseline /healthz req/s", lambda r: r["baseline_rps"]),
        ("rush req/s", lambda r: r["rush_rps"]),
        ("rush ÷ baseline", lambda r: f"{r['ratio']:.0%}" if r["ratio"] is not None else "-"),
        ("rush p50 / p95 / p99 ms", lambda r: f"{r['rush_p50_ms']} / {r['rush_p95_ms']} / {r['rush_p99_ms']}"),
        ("rush statuses", lambda r: " ".join(f"{k}:{v}" for k, v in r["phases"]["rush"]["statuses"].items())),
        ("scarce bed-nights sold", lambda r: f"{r['phases']['rush']['bed_nights_sold']} / "
                                             f"{r['phases']['rush']['scarce_bed_nights']}"),
        ("sold out after s (attempts)",
         lambda r: f"{r['sellout_s']} ({r['phases']['rush']['attempts_until_sellout']})"),
        ("block req/s", lambda r: r["block_rps"]),
        ("block p50 / p95 / p99 ms", lambda r: f"{r['phases']['block']['p50_ms']} / {r['phases']['block']['p95_ms']}"
                                               f" / {r['block_p99_ms']}"),
        ("block statuses", lambda r: " ".join(f"{k}:{v}" for k, v in r["phases"]["block"]["statuses"].items())),
        ("block bed-nights sold", lambda r: r["phases"]["block"]["bed_nights_sold"]),
        ("search (first page) p50 / p95 ms", lambda r: f"{r['search_p50_ms']} / {r['search_p95_ms']}"),
        (f"groups ({GROUP_BEDS} beds) p50 / p95 ms", lambda r: f"{r['groups_p50_ms']} / {r['groups_p95_ms']}"),
        ("order req/s", lambda r: r["order_rps"]),
        ("order p50 / p95 / p99 ms", lambda r: f"{r['phases']['orders']['p50_ms']} / "
                                               f"{r['phases']['orders']['p95_ms']} / {r['order_p99_ms']}"),
        ("order statuses", lambda r: " ".join(f"{k}:{v}" for k, v in r["phases"]["orders"]["statuses"].items())),
        ("order bed-nights sold", lambda r: r["phases"]["orders"]["bed_nights_sold"]),
        ("duplicates in the database", lambda r: r["duplicates"]),
        ("errors", lambda r: r["errors"]),
        ("targets missed", lambda r: ", ".join(k for k, ok in r["targets"].items() if not ok) or "none"),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"{'':{width}}  " + "  ".join(f"{k:>28}" for k in kinds)]
    for label, get in rows:
        lines.append(f"{label:{width}}  " + "  ".join(f"{str(get(results[k])):>28}" for k in kinds))
    for k, r in results.items():
        if "skipped" in r:
            lines.append(f"{k}: skipped ({r['skipped']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a shorter baseline and fewer searches")
    parser.add_argument("--small", action="store_true",
                        help="a tenth of the island (200 listings, 1,000 beds): checks the benchmark runs, "
                             "its figures say nothing about Gotland scale")
    parser.add_argument("--only", choices=("sqlite", "postgres"), help="run one database only")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (gunicorn logs, SQLite file)")
    args = parser.parse_args(argv)
    if args.small:
        global LISTINGS, TOTAL_BEDS
        LISTINGS, TOTAL_BEDS = LISTINGS // 10, TOTAL_BEDS // 10
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="sangplats-bench-"))
    results: dict = {}
    try:
        for kind in ("sqlite", "postgres"):
            if args.only and args.only != kind:
                continue
            if kind == "postgres" and not postgres_reachable():
                results[kind] = {"skipped": "PostgreSQL at 127.0.0.1:5432 is not reachable"}
                continue
            results[kind] = run_backend(kind, args.quick, workdir)
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    # The machine's load average before and after: other work on the same cores skews every figure.
    meta = {"quick": args.quick, "small": args.small, "seconds": round(time.perf_counter() - started, 1),
            "cpus": os.cpu_count(),
            "load_avg_before": round(load_before, 2), "load_avg_after": round(os.getloadavg()[0], 2),
            "at": datetime.now(UTC).isoformat(timespec="seconds")}
    # A small run only checks that the benchmark works: it never replaces the figures at full scale.
    written = RESULTS.with_name("small.json") if args.small else RESULTS
    written.parent.mkdir(parents=True, exist_ok=True)
    for result in results.values():
        result["meta"] = meta
    written.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(json.dumps(results, indent=2, ensure_ascii=False))
    print()
    print(table(results))
    print(f"\nwritten to {written.relative_to(ROOT)} in {meta['seconds']} s "
          f"(load average {meta['load_avg_before']} before, {meta['load_avg_after']} after, {meta['cpus']} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
