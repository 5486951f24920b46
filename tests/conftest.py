"""Test fixtures: the app on SQLite and PostgreSQL, clients, and factories that return callables.

Every test that takes `app` (directly or through another fixture) runs once per database:
SQLite always, PostgreSQL when it is reachable. With CI=true an unreachable PostgreSQL fails
the run instead of skipping.
"""
from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from flask import g
from sqlalchemy import create_engine, text
from werkzeug.routing.rules import Rule

from app import create_app
from app.extensions import db
from app.services import accounts, delegations, listings, pricing, seasons, vetting
from app.services import booking as booking_service
from app.services.base import Actor
from tests.helpers import (  # noqa: F401  (re-exported for the fixtures below)
    FIRST_NIGHT,
    LAST_NIGHT,
    NOW,
    PASSWORD,
    RACE_STRIKE_LIMIT,
    ROOT,
    YEAR,
    stale_catalogues,
    valid_organisation_number,
)
from tests.live_server import IN_CI, GunicornServer, RaceWorld, fresh_postgres_database, migrate, postgres_reachable

# The Stripe fixtures (localstripe, the app served on a port, webhooks) for every test module that asks for them.
pytest_plugins = ["tests.stripe_fixtures"]

def _share_url_builders() -> None:
    """Every test builds a fresh app, and werkzeug compiles two URL builders (AST -> code) for each of its ~280
    rules: a fifth of a typical test's CPU time. A builder is a plain function of the rule's text, its parsed
    parts, its defaults' names and `append_unknown` (it reaches the rule's converters through its `.self`
    argument), so one compiled function serves every app's copy of the rule. Rules with a default for one of their
    own variables (which werkzeug bakes into the code through the converter) are compiled as before."""
    original = Rule._compile_builder
    builders: dict = {}

    def compile_builder(self, append_unknown=True):
        defaults = self.defaults or {}
        if any(is_dynamic and data in defaults for is_dynamic, data in self._trace):
            return original(self, append_unknown)
        key = (self.rule, tuple(self._trace), tuple(defaults), append_unknown)
        if key not in builders:
            builders[key] = original(self, append_unknown)
        return builders[key]

    Rule._compile_builder = compile_builder


_share_url_builders()


def pytest_sessionstart(session):
    """The tests use the catalogues `make install` compiled, so a broken build step cannot hide."""
    problems = stale_catalogues(ROOT / "app" / "translations")
    if problems:
        pytest.exit("; ".join(problems) + ": run `make install` (or `make translations`).", returncode=4)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("db") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url():
    if not postgres_reachable():
        if IN_CI:
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is not reachable, and CI=true makes its tests mandatory.")
        pytest.skip("PostgreSQL is not reachable here (its tests are mandatory with CI=true).")
    with fresh_postgres_database("sangplats_test") as url:
        yield url


# Empties the test database in one round trip. The append-only tables refuse DELETE and TRUNCATE by trigger; the
# test superuser empties every table with DELETE as a replica (no triggers, foreign keys included) and restarts
# the id sequences a test has used (an unused one still starts at 1).
EMPTY_POSTGRES = """
DO $$
DECLARE
    name text;
BEGIN
    SET LOCAL session_replication_role = replica;
    FOR name IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version' LOOP
        EXECUTE format('DELETE FROM %I', name);
    END LOOP;
    FOR name IN SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' AND last_value IS NOT NULL LOOP
        EXECUTE format('ALTER SEQUENCE %I RESTART', name);
    END LOOP;
END
$$
"""


@pytest.fixture(scope="session")
def postgres_engine(postgres_url):
    """One connection for the clean-ups of the whole session (not one per test)."""
    engine = create_engine(postgres_url, pool_pre_ping=True)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A freshly migrated, empty database for one test."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "test.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    with request.getfixturevalue("postgres_engine").begin() as conn:
        conn.execute(text(EMPTY_POSTGRES))
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def app(database_url, tmp_path):
    app = create_app("testing", {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "MAIL_OUTBOX_DIR": str(tmp_path / "mail"),
        "SERVER_NAME": "localhost",
    })

    @app.teardown_request
    def fresh_g(_error):
        # Requests reuse the test's app context, so without this `g` (the CSRF token, the signed-in
        # user) would outlive a request, which never happens in production.
        g.__dict__.clear()

    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def backend(app) -> str:
    return db.engine.dialect.name


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# ---------------------------------------------------------------------------------------------
# Factories: each returns a callable; parameters default to a valid, bookable world.
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def make_admin(app):
    counter = iter(range(1, 10_000))

    def make(**params):
        n = next(counter)
        params.setdefault("email", f"admin{n}@example.se")
        params.setdefault("password", PASSWORD)
        params.setdefault("name", f"Admin {n}")
        return accounts.create_admin(params["email"], params["password"], params["name"],
                                     totp_secret=params.get("totp_secret"))

    return make


@pytest.fixture
def admin_actor(make_admin):
    user = make_admin()
    return Actor(user.id, "admin")


@pytest.fixture
def make_season(app, admin_actor):
    def make(**params):
        year = params.setdefault("year", YEAR)
        params.setdefault("name", f"Almedalsveckan {year}")
        params.setdefault("first_night", date(year, 6, 20))
        params.setdefault("last_night", date(year, 6, 25))
        params.setdefault("bookings_open_at", NOW - timedelta(days=1))
        params.setdefault("price_cap_ore", 90000)
        params.setdefault("max_increase_pct", 10)
        params.setdefault("strike_limit", 3)
        params.setdefault("hold_minutes", 15)
        params.setdefault("free_cancellation_until", params["first_night"] - timedelta(days=60))
        params.setdefault("late_cancellation_refund_pct", 50)
        return seasons.create_season(admin_actor, params)

    return make


@pytest.fixture
def make_user(app):
    counter = iter(range(1, 100_000))

    def make(role="coordinator", **params):
        n = next(counter)
        params.setdefault("email", f"{role}{n}@example.se")
        params.setdefault("password", PASSWORD)
        params.setdefault("name", f"{role.title()} {n}")
        return accounts.register_user(params["email"], params["password"], params["name"], role)

    return make


@pytest.fixture
def make_host(make_user, admin_actor):
    def make(approved=True, **params):
        user = make_user("host", **params)
        vetting.submit_profile(Actor(user.id, "host"), legal_name=f"{user.name} AB", phone="+46 498 123 456",
                               address="Strandgatan 1", postal_code="621 56", right_to_rent=True)
        if approved:
            vetting.decide(admin_actor, user.id, "approve", "checked")
        return user

    return make


@pytest.fixture
def make_listing(make_host, make_season):
    """A published listing with `beds` beds in one room (or `rooms` rooms), priced for the season."""

    def make(host=None, beds=2, rooms=1, price_ore=50000, season=None, publish=True, walking_minutes=10, **params):
        from app.models import Season
        season = season or db.session.query(Season).filter_by(year=YEAR).one_or_none() or make_season()
        host = host or make_host()
        actor = Actor(host.id, "host")
        listing = listings.create_listing(
            actor, title=params.get("title", "Rum i Visby"), description="Nära Almedalen.",
            address="Strandgatan 1", postal_code="621 56", walking_minutes=walking_minutes)
        for r in range(rooms):
            room = listings.add_room(actor, listing.id, f"Rum {r + 1}")
            for b in range(beds):
                bed = listings.add_bed(actor, room.id, f"Säng {b + 1}", "single")
                pricing.set_price(actor, bed.id, season.year, price_ore)
        if publish:
            listings.publish(actor, listing.id, season.terms_version)
        return listing

    return make


@pytest.fixture
def make_delegation(make_user):
    counter = iter(range(1, 100_000))

    def make(coordinator=None, members=2, organisation_number=None):
        coordinator = coordinator or make_user("coordinator")
        actor = Actor(coordinator.id, "coordinator")
        number = organisation_number or valid_organisation_number(next(counter))
        delegation = delegations.create_delegation(actor, "Föreningen Framtid", number)
        for i in range(members):
            delegations.add_member(actor, delegation.id, f"Medlem {i + 1}", f"medlem{i + 1}@example.se")
        return delegation

    return make


@pytest.fixture
def make_booking(make_listing, make_user, make_delegation):
    """make_booking(**params) -> a booking made through the booking service (the door every page, API call, CLI
    command and job uses). Defaults: a fresh 2-bed listing, all its beds, a new coordinator's delegation, nights
    21 and 22 June of the test season, invoice, the contract accepted. `listing=`, `bed_ids=`, `delegation=`
    (its coordinator books), `coordinator=`, `check_in=`, `check_out=`, `payment_method=`, `now=` override them."""
    from app.models import User

    def make(**params):
        listing = params.pop("listing", None)
        if "bed_ids" not in params:
            params["bed_ids"] = [bed.id for bed in (listing or make_listing()).beds()]
        delegation = params.pop("delegation", None)
        coordinator = params.pop("coordinator", None)
        if delegation is None:
            delegation = make_delegation(coordinator or make_user("coordinator"))
        if coordinator is None:
            coordinator = db.session.get(User, delegation.coordinator_id)
        params.setdefault("check_in", date(YEAR, 6, 21))
        params.setdefault("check_out", date(YEAR, 6, 23))
        params.setdefault("accept_contract", True)
        params.setdefault("payment_method", "invoice")
        return booking_service.create_booking(Actor(coordinator.id, "coordinator"), delegation_id=delegation.id,
                                              **params)

    return make


@pytest.fixture
def api_world(make_listing, make_delegation, make_user, api_as):
    """A published 3-bed listing and a coordinator with a delegation, as API clients."""
    from app.models import HostProfile

    listing = make_listing(beds=3, price_ore=50000)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    host_user = db.session.get(HostProfile, listing.host_id).user
    return {
        "listing": listing, "bed_ids": [b.id for b in listing.beds()], "delegation": delegation,
        "coordinator": coordinator, "coord": api_as(coordinator), "host": api_as(host_user), "host_user": host_user,
    }


class ApiClient:
    """The JSON API through the test client, with a bearer token."""

    def __init__(self, client, token=None):
        self.client = client
        self.token = token

    def _headers(self, headers=None):
        result = dict(headers or {})
        if self.token:
            result["Authorization"] = f"Bearer {self.token}"
        return result

    def get(self, path, **kw):
        return self.client.get("/api/v1" + path, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, path, json=None, **kw):
        return self.client.post("/api/v1" + path, json=json, headers=self._headers(kw.pop("headers", None)), **kw)

    def put(self, path, json=None, **kw):
        return self.client.put("/api/v1" + path, json=json, headers=self._headers(kw.pop("headers", None)), **kw)

    def patch(self, path, json=None, **kw):
        return self.client.patch("/api/v1" + path, json=json, headers=self._headers(kw.pop("headers", None)), **kw)

    def delete(self, path, **kw):
        return self.client.delete("/api/v1" + path, headers=self._headers(kw.pop("headers", None)), **kw)


@pytest.fixture
def api_as(client):
    """api_as(user) -> an ApiClient signed in as that user (admins need `otp` if enrolled)."""

    def make(user=None, password=PASSWORD, otp=None):
        if user is None:
            return ApiClient(client)
        body = {"email": user.email, "password": password}
        if otp:
            body["otp"] = otp
        if user.role == "admin" and not user.totp_secret:
            token = accounts.issue_token(user)
        else:
            response = client.post("/api/v1/tokens", json=body)
            assert response.status_code == 201, response.get_json()
            token = response.get_json()["token"]
        return ApiClient(client, token)

    return make


@pytest.fixture
def login(client):
    """Sign in through the real form (CSRF token read from the page)."""
    import re

    def do(user, password=PASSWORD, otp=None):
        page = client.get("/login")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)).group(1)
        data = {"email": user.email, "password": password, "csrf_token": token}
        if otp:
            data["otp"] = otp
        return client.post("/login", data=data)

    return do



@pytest.fixture
def admin_login(login, make_admin):
    """Sign in as a new admin through the real form, with a TOTP code."""
    import pyotp

    def do():
        secret = pyotp.random_base32()
        admin = make_admin(totp_secret=secret)
        response = login(admin, otp=pyotp.TOTP(secret).now())
        assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")
        return admin

    return do


@pytest.fixture(scope="module")
def race_world(tmp_path_factory):
    """PostgreSQL with a season, an admin and a coordinator, served by gunicorn with 4 workers (the race tests)."""
    if not postgres_reachable():
        if IN_CI:
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is not reachable, and CI=true makes its tests mandatory.")
        pytest.skip("PostgreSQL is not reachable here (its tests are mandatory with CI=true).")
    from app import create_app
    from app.extensions import db
    from app.services import accounts, delegations, seasons
    from app.services.base import Actor

    with fresh_postgres_database("sangplats_races") as url:
        app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            now = datetime.now(UTC)
            admin = accounts.create_admin("admin@example.se", PASSWORD, "Admin")
            seasons.create_season(Actor(admin.id, "admin"), {
                "year": YEAR, "name": f"Almedalsveckan {YEAR}", "first_night": FIRST_NIGHT,
                "last_night": LAST_NIGHT, "bookings_open_at": now - timedelta(days=1), "price_cap_ore": 90000,
                "max_increase_pct": 10, "strike_limit": RACE_STRIKE_LIMIT, "hold_minutes": 15,
                "free_cancellation_until": FIRST_NIGHT - timedelta(days=60), "late_cancellation_refund_pct": 50,
            })
            coordinator = accounts.register_user("samordnare@example.se", PASSWORD, "Samordnare", "coordinator")
            delegation = delegations.create_delegation(Actor(coordinator.id, "coordinator"), "Förening", "802000-1239")
            state = {
                "admin_id": admin.id, "coordinator_id": coordinator.id, "delegation_id": delegation.id,
                "admin_tokens": [accounts.issue_token(admin) for _ in range(3)],
                "coordinator_token": accounts.issue_token(coordinator),
            }
            db.session.remove()
        log = tmp_path_factory.mktemp("races") / "gunicorn.log"
        with GunicornServer(url, workers=4, log_path=log) as server:
            w = RaceWorld(url, app, server)
            w.__dict__.update(state)
            yield w
            w.engine.dispose()
        with app.app_context():
            db.engine.dispose()
