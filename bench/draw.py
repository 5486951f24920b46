"""The allocation-draw benchmark: `python -m bench.draw [--requests N] [--beds N] [--small] [--only sqlite|postgres]`.

Per database (a fresh SQLite file, then a fresh PostgreSQL database), seeds a season whose allocation round has
closed: 2,000 listings with 10,000 beds (prices 250-850 kr, some nights blocked by their hosts) and 2,000 requests
(1-8 beds, 1-4 nights, sometimes walking or price limits, up to three preferred listings, invoice or card), each of
its own organisation. Then:

1. draw       `allocation.draw` in this process, timed: its duration, the share of requests allocated, the longest
              transaction (on SQLite the write lock is held that long), while a reader process keeps reading the
              round and searching availability (ordinary reads keep working during the draw: their count and slowest);
2. checks     the published result verifies (seed against commitment, every rank recomputed), no bed-night is
              occupied twice, every allocated request holds exactly its beds for every night of its stay, every
              request is decided once;
3. resume     a second season with the same requests over the same beds, its draw stopped by an injected failure
              halfway, then run again: the second run completes it and decides only what was left.

Prints a JSON document and a table and writes bench/results/draw.json (draw-small.json with --small, a tenth of
the size: it checks the benchmark runs, its figures say nothing at full scale). Targets: the draw under 30 s, no
transaction over 1 s, the resumed draw complete, every check clean.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.live_server import fresh_postgres_database, migrate, postgres_reachable  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "draw.json"
YEAR = 2027
FIRST_NIGHT = date(2027, 6, 20)
LAST_NIGHT = date(2027, 6, 27)  # eight nights
NIGHTS = (LAST_NIGHT - FIRST_NIGHT).days + 1
TARGETS = {"draw_s": 30.0, "longest_transaction_ms": 1000.0}
PASSWORD_FOR_ALL = "bench-password-not-used"


def organisation_number(i: int) -> str:
    """A valid organisation number of its own for request i (one request per organisation number)."""
    from stdnum import luhn
    base = f"{803000000 + i:09d}"
    return f"{base[:6]}-{base[6:]}{luhn.calc_check_digit(base)}"


# ---------------------------------------------------------------------------------------------
# Seeding
# ---------------------------------------------------------------------------------------------


def seed(database_url: str, rng: random.Random, listings: int, beds: int, requests: int) -> dict:
    """Two seasons with closed rounds (the season, its round and seed through the services; the bulk of hosts, beds
    and requests by Core inserts into the model tables, as bench.rush does), then ANALYZE."""
    from sqlalchemy import insert, text

    from app import create_app
    from app.extensions import db
    from app.models import (
        AllocationRequest,
        Bed,
        BedNight,
        BedPrice,
        Delegation,
        HostProfile,
        Listing,
        OfferAcceptance,
        Room,
        User,
    )
    from app.services import accounts, lottery, seasons
    from app.services.base import Actor
    from app.services.passwords import hash_password

    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url})
    started = time.perf_counter()
    with app.app_context():
        now = datetime.now(UTC)
        admin = Actor(accounts.create_admin("admin@bench.example.se", "bench-admin-password", "Bench Admin").id,
                      "admin")
        season_ids = []
        for year in (YEAR, YEAR + 1):
            first = FIRST_NIGHT.replace(year=year)
            season = seasons.create_season(admin, {
                "year": year, "name": f"Almedalsveckan {year}", "first_night": first,
                "last_night": first + timedelta(days=NIGHTS - 1), "bookings_open_at": now + timedelta(days=1),
                "price_cap_ore": 90000, "max_increase_pct": 100, "strike_limit": 3, "hold_minutes": 15,
                "free_cancellation_until": first - timedelta(days=60), "late_cancellation_refund_pct": 50,
                "requests_open_at": now - timedelta(days=2), "allocation_at": now - timedelta(minutes=1)})
            season_ids.append(season.id)
        terms_version = season.terms_version
        password_hash = hash_password(PASSWORD_FOR_ALL)

        def bulk(model, rows: list[dict]) -> list[int]:
            result = db.session.execute(insert(model).returning(model.id, sort_by_parameter_order=True), rows)
            return list(result.scalars())

        hosts = max(1, listings * 4 // 5)
        host_ids = bulk(User, [{"email": f"vard{i}@bench.example.se", "password_hash": password_hash,
                                "name": f"Värd {i}", "role": "host", "locale": "sv", "created_at": now,
                                "session_version": 1, "token_version": 1} for i in range(hosts)])
        db.session.execute(insert(HostProfile), [{
            "user_id": uid, "legal_name": f"Värd {i} AB", "phone": "+46 498 123 456", "address": f"Strandgatan {i}",
            "postal_code": "621 56", "right_to_rent": True, "vetting_status": "approved", "strikes": 0,
            "submitted_at": now, "verified_since": now, "decided_at": now, "decision_reason": "bench",
            "calendar_token": secrets.token_urlsafe(24)} for i, uid in enumerate(host_ids)])
        walking = [min(90, int(rng.expovariate(1 / 20))) for _ in range(listings)]
        listing_ids = bulk(Listing, [{
            "host_id": host_ids[i % hosts], "title": f"Boende {i} i Visby", "description": "Nära Almedalen.",
            "address": f"Gatan {i}", "postal_code": "621 56", "walking_minutes": walking[i], "published": True,
            "accepted_terms_version": terms_version, "offer_accepted_at": now, "created_at": now}
            for i in range(listings)])
        db.session.execute(insert(OfferAcceptance), [
            {"listing_id": lid, "terms_version": terms_version, "actor_id": host_ids[i % hosts], "accepted_at": now}
            for i, lid in enumerate(listing_ids)])
        counts = [beds // listings + (1 if i < beds % listings else 0) for i in range(listings)]
        room_ids = bulk(Room, [{"listing_id": lid, "name": "Rum 1"} for lid in listing_ids])
        bed_rows = [{"room_id": room_ids[i], "label": f"Säng {b + 1}", "kind": "single"}
                    for i, n in enumerate(counts) for b in range(n)]
        bed_ids = bulk(Bed, bed_rows)
        prices = {bid: rng.randrange(25000, 85001, 500) for bid in bed_ids}
        db.session.execute(insert(BedPrice), [{"bed_id": bid, "season_id": sid, "price_ore": price, "updated_at": now}
                                              for sid in season_ids for bid, price in prices.items()])
        blocks = []
        for bid in bed_ids:
            if rng.random() < 0.2:
                start = rng.randrange(NIGHTS)
                for d in range(start, min(NIGHTS, start + rng.randint(2, 5))):
                    for year in (YEAR, YEAR + 1):
                        blocks.append({"bed_id": bid, "night": FIRST_NIGHT.replace(year=year) + timedelta(days=d),
                                       "state": "host_block", "created_at": now})
        db.session.execute(insert(BedNight), blocks)
        coordinator_ids = bulk(User, [{"email": f"samordnare{i}@bench.example.se", "password_hash": password_hash,
                                       "name": f"Samordnare {i}", "role": "coordinator", "locale": "sv",
                                       "created_at": now, "session_version": 1, "token_version": 1}
                                      for i in range(requests)])
        delegation_ids = bulk(Delegation, [{
            "coordinator_id": uid, "name": f"Förening {i}", "organisation_number": organisation_number(i),
            "calendar_token": secrets.token_urlsafe(24), "created_at": now} for i, uid in enumerate(coordinator_ids)])
        near = sorted(range(listings), key=lambda i: walking[i])[:max(1, listings // 20)]  # the popular ones
        for season_id, year in zip(season_ids, (YEAR, YEAR + 1), strict=True):
            first = FIRST_NIGHT.replace(year=year)
            rows = []
            for i in range(requests):
                nights = rng.choice((1, 2, 2, 3, 3, 4))
                check_in = first + timedelta(days=rng.randrange(NIGHTS - nights + 1))
                preferred = rng.sample(near, k=min(len(near), rng.choice((0, 0, 1, 2, 3))))
                rows.append({
                    "season_id": season_id, "delegation_id": delegation_ids[i], "coordinator_id": coordinator_ids[i],
                    "organisation_number": organisation_number(i), "ref": lottery.new_ref(), "check_in": check_in,
                    "check_out": check_in + timedelta(days=nights), "beds": rng.choice((1, 2, 2, 3, 4, 4, 6, 8)),
                    "max_walking_minutes": rng.choice((None, None, 15, 30)),
                    "max_price_ore": rng.choice((None, None, None, 60000)),
                    "max_listings": rng.choice((1, 2, 3, 3)),
                    "preferred_listing_ids": json.dumps([listing_ids[n] for n in preferred]),
                    "payment_method": rng.choice(("invoice", "invoice", "card")), "terms_version": terms_version,
                    "accepted_at": now - timedelta(days=1), "accepted_ip": "127.0.0.1", "status": "submitted",
                    "created_at": now - timedelta(days=1)})
            db.session.execute(insert(AllocationRequest), rows)
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return {"listings": listings, "beds": len(bed_ids), "requests": requests, "blocked_bed_nights": len(blocks) // 2,
            "seed_s": round(time.perf_counter() - started, 1)}


# ---------------------------------------------------------------------------------------------
# The draw, a reader beside it, the checks, the resumed draw
# ---------------------------------------------------------------------------------------------


def read_loop(database_url: str, stop, results) -> None:
    """Ordinary reads during the draw, from a process of its own as an app server's would be: the round's public view
    and an availability search, one every 20 ms; (latencies, errors) are sent back when `stop` is set."""
    from app import create_app
    from app.extensions import db
    from app.services import allocation, availability
    rng = random.Random(7)
    latencies: list[float] = []
    errors: list[str] = []
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        while not stop.is_set():
            started = time.perf_counter()
            try:
                allocation.public_round(YEAR)
                check_in = FIRST_NIGHT + timedelta(days=rng.randrange(NIGHTS - 2))
                availability.search_page(YEAR, check_in, check_in + timedelta(days=2), rng.randint(1, 4), limit=50,
                                         refuse_past=False)
                db.session.commit()
            except Exception as error:  # reported, not raised: the figure is whether reads keep working
                db.session.rollback()
                errors.append(repr(error)[:200])
            latencies.append(time.perf_counter() - started)
            stop.wait(0.02)
        db.session.remove()
        db.engine.dispose()
    results.put((latencies, errors))


def checks(year: int) -> dict:
    """What must hold after a draw, read from the database."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import AllocationRequest, AuditEntry, BedNight, Booking, Season
    from app.services import allocation

    season_id = db.session.scalar(select(Season.id).where(Season.year == year))
    verified = allocation.verify(year)
    doubles = db.session.execute(select(BedNight.bed_id, BedNight.night, func.count()).where(
        BedNight.state.in_(("held", "booked", "host_block", "host_cancelled")))
        .group_by(BedNight.bed_id, BedNight.night).having(func.count() > 1)).all()
    wrong_size, decided_twice, undecided = 0, 0, 0
    rows = db.session.scalars(select(AllocationRequest).where(AllocationRequest.season_id == season_id)).all()
    decisions = dict(db.session.execute(
        select(AuditEntry.object_id, func.count()).where(
            AuditEntry.action.in_(("allocation.allocated", "allocation.unallocated")))
        .group_by(AuditEntry.object_id)).tuples().all())
    for row in rows:
        if row.status == "submitted":
            undecided += 1
        if decisions.get(str(row.id), 0) > 1:
            decided_twice += 1
        if row.status == "allocated":
            lines = db.session.execute(select(BedNight.bed_id, BedNight.night).join(
                Booking, Booking.id == BedNight.booking_id).where(Booking.order_id == row.order_id)).all()
            nights = (row.check_out - row.check_in).days
            if len({bed for bed, _ in lines}) != row.beds or len(set(lines)) != row.beds * nights:
                wrong_size += 1
    db.session.commit()
    return {"verified": verified.ok, "double_booked": len(doubles), "wrong_size": wrong_size,
            "decided_twice": decided_twice, "undecided": undecided}


def run_backend(kind: str, workdir: Path, sizes: dict) -> dict:
    from app import create_app
    from app.extensions import db
    from app.services import allocation

    rng = random.Random(20270620)
    url = f"sqlite:///{workdir / 'draw.db'}" if kind == "sqlite" else None
    context = fresh_postgres_database("sangplats_bench_draw") if kind == "postgres" else None
    if context is not None:
        url = context.__enter__()
    else:
        migrate(url)
    assert url is not None  # nosec B101
    try:
        world = seed(url, rng, **sizes)
        app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
        spawn = multiprocessing.get_context("spawn")
        stop, sent = spawn.Event(), spawn.Queue()
        reader = spawn.Process(target=read_loop, args=(url, stop, sent), daemon=True)
        reader.start()
        time.sleep(3)  # the reader's app is up before the draw starts
        with app.app_context():
            report = allocation.draw(YEAR)
            stop.set()
            latencies, read_errors = sent.get(timeout=120)
            reader.join(60)
            checked = checks(YEAR)

            # The resumed draw: stopped by a failure halfway, then run again.
            decided, original, stop_at = [0], allocation._Draw.decide, sizes["requests"] // 2

            def fail_halfway(self, row, order, refusal):
                if decided[0] == stop_at:
                    raise RuntimeError("injected: the draw stops here")
                decided[0] += 1
                return original(self, row, order, refusal)

            allocation._Draw.decide = fail_halfway  # type: ignore[method-assign]
            try:
                allocation.draw(YEAR + 1)
            except RuntimeError:
                db.session.rollback()
            finally:
                allocation._Draw.decide = original  # type: ignore[method-assign]
            resumed = allocation.draw(YEAR + 1)
            resumed_checks = checks(YEAR + 1)
            again = allocation.draw(YEAR + 1)
            db.session.remove()
            db.engine.dispose()
    finally:
        if context is not None:
            context.__exit__(None, None, None)
    reads = sorted(latencies)
    return {
        "world": world,
        "draw_s": round(report.seconds, 2),
        "requests": report.requests,
        "allocated": report.allocated,
        "allocated_share": round(report.allocated / report.requests, 3) if report.requests else None,
        "longest_transaction_ms": round(report.longest_transaction * 1000, 1),
        "transactions": report.transactions,
        "inventory_loads": report.reloads,
        "reads_during_draw": len(reads),
        "read_p50_ms": round(statistics.median(reads) * 1000, 1) if reads else None,
        "read_max_ms": round(reads[-1] * 1000, 1) if reads else None,
        "read_errors": read_errors[:5],
        "checks": checked,
        "resume": {"stopped_after": stop_at, "decided_by_second_run": resumed.allocated + resumed.unallocated,
                   "complete": resumed.drawn, "third_run_changed_nothing": again.already,
                   "longest_transaction_ms": round(resumed.longest_transaction * 1000, 1),
                   "checks": resumed_checks},
    }


def _clean(checked: dict) -> bool:
    return checked["verified"] and not any(checked[key] for key in (
        "double_booked", "wrong_size", "decided_twice", "undecided"))


def targets_met(result: dict) -> dict:
    resume = result["resume"]
    return {"draw_s": result["draw_s"] < TARGETS["draw_s"],
            "longest_transaction_ms": result["longest_transaction_ms"] <= TARGETS["longest_transaction_ms"],
            "resumed": resume["complete"] and resume["third_run_changed_nothing"]
            and resume["decided_by_second_run"] == result["requests"] - resume["stopped_after"],
            "reads_kept_working": result["reads_during_draw"] > 0 and not result["read_errors"],
            "checks": _clean(result["checks"]) and _clean(resume["checks"])}


def table(results: dict) -> str:
    rows = [("", *results)]
    for key in ("draw_s", "requests", "allocated_share", "longest_transaction_ms", "transactions",
                "reads_during_draw", "read_max_ms"):
        rows.append((key, *(str(r.get(key, r.get("skipped", ""))) for r in results.values())))
    rows.append(("targets missed", *(", ".join(k for k, ok in r.get("targets", {}).items() if not ok) or "none"
                                     for r in results.values())))
    width = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, width, strict=True)) for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--beds", type=int, default=10_000)
    parser.add_argument("--listings", type=int, default=2000)
    parser.add_argument("--small", action="store_true", help="a tenth of each size: checks the benchmark runs")
    parser.add_argument("--only", choices=("sqlite", "postgres"), help="run one database only")
    args = parser.parse_args(argv)
    scale = 10 if args.small else 1
    sizes = {"listings": args.listings // scale, "beds": args.beds // scale, "requests": args.requests // scale}
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="sangplats-bench-draw-"))
    results: dict = {}
    try:
        for kind in ("sqlite", "postgres"):
            if args.only and args.only != kind:
                continue
            if kind == "postgres" and not postgres_reachable():
                results[kind] = {"skipped": "PostgreSQL at 127.0.0.1:5432 is not reachable"}
                continue
            results[kind] = run_backend(kind, workdir, sizes)
            results[kind]["targets"] = targets_met(results[kind])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    meta = {"sizes": sizes, "small": args.small, "seconds": round(time.perf_counter() - started, 1),
            "cpus": os.cpu_count(), "load_avg_before": round(load_before, 2),
            "load_avg_after": round(os.getloadavg()[0], 2), "at": datetime.now(UTC).isoformat(timespec="seconds")}
    written = RESULTS.with_name("draw-small.json") if args.small else RESULTS
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
