"""Schemathesis against /api/v1/openapi.json, in-process, authenticated as each role: no 5xx, no schema violation."""
import shutil
from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from app.extensions import db
from app.services import accounts
from tests.helpers import NOW, YEAR

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def fuzz_app(sqlite_template, tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    shutil.copyfile(sqlite_template, path)
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SERVER_NAME": "localhost",
                                 "RATELIMIT_ENABLED": False})
    with app.app_context():
        from app.services import delegations, listings, pricing, seasons, vetting
        from app.services.base import Actor
        admin = accounts.create_admin("fuzz-admin@example.se", "correct-horse-battery", "Admin")
        admin_actor = Actor(admin.id, "admin")
        seasons.create_season(admin_actor, dict(
            year=YEAR, name=f"{YEAR}", first_night=NOW.date().replace(year=YEAR, month=6, day=20),
            last_night=NOW.date().replace(year=YEAR, month=6, day=25), bookings_open_at=NOW - timedelta(days=1),
            price_cap_ore=90000, max_increase_pct=10, strike_limit=3, hold_minutes=15,
            free_cancellation_until=NOW.date().replace(year=YEAR, month=4, day=21), late_cancellation_refund_pct=50))
        host = accounts.register_user("fuzz-host@example.se", "correct-horse-battery", "Host", "host")
        host_actor = Actor(host.id, "host")
        vetting.submit_profile(host_actor, legal_name="H AB", phone="+46 70 1234567", address="Gatan 1",
                               postal_code="621 56", right_to_rent=True)
        vetting.decide(admin_actor, host.id, "approve", "ok")
        listing = listings.create_listing(host_actor, title="T", description="", address="A", postal_code="621 56",
                                          walking_minutes=5)
        room = listings.add_room(host_actor, listing.id, "R")
        for i in range(3):
            bed = listings.add_bed(host_actor, room.id, f"B{i}", "single")
            pricing.set_price(host_actor, bed.id, YEAR, 50000)
        coordinator = accounts.register_user("fuzz-coord@example.se", "correct-horse-battery", "C", "coordinator")
        delegations.create_delegation(Actor(coordinator.id, "coordinator"), "Org", "802000-1239")
        app.config["FUZZ_TOKENS"] = {role: accounts.issue_token(user) for role, user in
                                     (("admin", admin), ("host", host), ("coordinator", coordinator))}
        db.session.remove()
    yield app


ROLES = ("anonymous", "host", "coordinator", "admin")


def test_api_never_fails_and_matches_its_schema(fuzz_app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40
    tokens = fuzz_app.config["FUZZ_TOKENS"]
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def exercise(case):
            for role in ROLES:
                headers = {"Authorization": f"Bearer {tokens[role]}"} if role in tokens else {}
                case.call_and_validate(headers=headers, checks=CHECKS)

        exercise()
