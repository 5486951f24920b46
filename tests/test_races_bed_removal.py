"""Race over HTTP against gunicorn (4 workers, PostgreSQL READ COMMITTED): a host removes a bed while a
coordinator books it, released together by a barrier, 10 rounds. Even rounds the bed has history (a
cancelled booking: removed softly), odd rounds none (deleted). Never both succeed; a removed bed never
holds a live bed-night; nothing answers 500."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import requests

from tests.helpers import FIRST_NIGHT, PASSWORD, ROUNDS, YEAR

STAY = {"check_in": FIRST_NIGHT.isoformat(), "check_out": (FIRST_NIGHT + timedelta(days=2)).isoformat()}


pytestmark = pytest.mark.serial  # gunicorn races: `make test` runs them alone

def new_bed(race_world, with_history: bool) -> tuple[int, str]:
    """A fresh approved host's published one-bed listing; with history: a booking of it, cancelled."""
    from app.extensions import db
    from app.models import Season
    from app.services import accounts, booking, cancellations, listings, pricing, vetting
    from app.services.base import Actor

    n = race_world.next()
    with race_world.app.app_context():
        host = accounts.register_user(f"remover{n}@example.se", PASSWORD, f"Värd {n}", "host")
        actor = Actor(host.id, "host")
        vetting.submit_profile(actor, legal_name=f"Värd {n} AB", phone="+46 498 123 456", address="Strandgatan 1",
                               postal_code="621 56", right_to_rent=True)
        vetting.decide(Actor(race_world.admin_id, "admin"), host.id, "approve", "checked")
        listing = listings.create_listing(actor, title=f"Huset {n}", description="", address="Strandgatan 1",
                                          postal_code="621 56", walking_minutes=5)
        bed = listings.add_bed(actor, listings.add_room(actor, listing.id, "Rum").id, "Säng", "single")
        pricing.set_price(actor, bed.id, YEAR, 40000)
        season = db.session.scalars(db.select(Season).where(Season.year == YEAR)).one()
        listings.publish(actor, listing.id, season.terms_version)
        if with_history:
            coordinator = Actor(race_world.coordinator_id, "coordinator")
            item = booking.create_booking(coordinator, delegation_id=race_world.delegation_id, bed_ids=[bed.id],
                                          check_in=FIRST_NIGHT, check_out=FIRST_NIGHT + timedelta(days=1),
                                          accept_contract=True, payment_method="invoice")
            cancellations.cancel_by_guest(coordinator, item.id)
        token, bed_id = accounts.issue_token(host), bed.id
        db.session.remove()
    return bed_id, token


def race(calls: list[tuple[str, str, str, dict | None]]) -> list[tuple[int, dict]]:
    """Send each (method, url, token, body) from its own thread, all released at once by a barrier."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def racer(i, method, url, token, body):
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {token}"
            session.get(url.split("/api/")[0] + "/healthz", timeout=30)
            barrier.wait(timeout=60)
            try:
                response = session.request(method, url, json=body, timeout=60)
                results[i] = (response.status_code, response.json())
            except (requests.RequestException, ValueError) as error:
                results[i] = (0, {"error": repr(error)})

    threads = [threading.Thread(target=racer, args=(i, *call), daemon=True) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a racer never finished"
    return results


def test_removing_a_bed_while_it_is_booked_one_wins(race_world):  # noqa: F811
    failures = []
    api = race_world.server.base_url + "/api/v1"
    for round_ in range(ROUNDS):
        with_history = round_ % 2 == 0
        bed_id, host_token = new_bed(race_world, with_history)
        book = ("POST", f"{api}/bookings", race_world.coordinator_token,
                {"delegation_id": race_world.delegation_id, "bed_ids": [bed_id], **STAY, "accept_contract": True,
                 "payment_method": "invoice"})
        remove = ("DELETE", f"{api}/beds/{bed_id}", host_token, None)
        calls = [book, remove] if round_ % 4 < 2 else [remove, book]  # alternate who starts its thread first
        answers = dict(zip((call[0] for call in calls), race(calls), strict=True))
        (book_status, book_body), (remove_status, remove_body) = answers["POST"], answers["DELETE"]
        rows = race_world.rows("SELECT removed_at IS NOT NULL FROM beds WHERE id = :id", id=bed_id)
        live = race_world.scalar("SELECT count(*) FROM bed_nights WHERE bed_id = :id AND state IN ('held', 'booked')",
                            id=bed_id)
        gone = not rows or rows[0][0]
        problems = []
        if book_status == 201:
            if remove_status != 409 or remove_body.get("code") != "bed_has_bookings":
                problems.append(f"booked, and the removal answered {remove_status} {remove_body}")
            if gone or live != 2:
                problems.append(f"booked, but bed gone {gone}, live bed-nights {live}")
        elif remove_status == 200:
            if book_status not in (409, 422) or (book_status == 409 and book_body.get("code") != "state_changed"):
                problems.append(f"removed, and the booking answered {book_status} {book_body}")
            if not gone or live:
                problems.append(f"removed, but bed gone {gone}, live bed-nights {live}")
            if remove_body.get("kept_for_history") is not with_history:
                problems.append(f"kept_for_history {remove_body.get('kept_for_history')}, history {with_history}")
        else:
            problems.append(f"neither won: booking {book_status} {book_body}, removal {remove_status} {remove_body}")
        if problems:
            failures.append(f"round {round_}: " + "; ".join(problems))
        print(f"round {round_} (history {with_history}): booking {book_status} {book_body.get('code', '')}, "
              f"removal {remove_status} {remove_body.get('code', '')}, bed gone {gone}, live {live}")
    assert failures == [], race_world.server.log_tail()  # a 500's traceback is in gunicorn's log
