"""Two app servers on one PostgreSQL database and one Redis (issue 14, "Must hold"), each a gunicorn started with
deploy/gunicorn.conf.py (2 gthread workers) in a working folder of its own (its own UPLOAD_DIR, mail folder and
metrics folder, as on two machines):

- a vetting document uploaded through one is downloaded by an admin through the other;
- a session made on one works on the other (the cookie, and a form's CSRF token);
- the rate limits are shared: the limit reached through one answers 429 through the other;
- `/metrics` adds up the counts of a server's worker processes (bookings, refusals) and refuses requests without
  the token; the access log is JSON with the request's id.

Run alone with `-s` to see what each test printed.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import FIRST_NIGHT, LAST_NIGHT, PASSWORD, ROOT, YEAR
from tests.live_server import IN_CI, GunicornServer, fresh_postgres_database, postgres_reachable

# Two gunicorns with two workers each want the machine: `make test` runs these with the races, alone.
pytestmark = pytest.mark.serial

REDIS_URL = "redis://127.0.0.1:6379/0"
METRICS_TOKEN = "multi-server-metrics-" + uuid.uuid4().hex
PDF = b"%PDF-1.4\n% a deed of title\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _required(reachable: bool, what: str) -> None:
    if not reachable:
        if IN_CI:
            pytest.fail(f"{what} is not reachable, and CI=true makes this test mandatory.")
        pytest.skip(f"{what} is not reachable here.")


def _redis_reachable() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    _required(postgres_reachable(), "PostgreSQL at 127.0.0.1:5432")
    _required(_redis_reachable(), "Redis at 127.0.0.1:6379")
    from app import create_app
    from app.extensions import db
    from app.services import accounts, delegations, listings, pricing, seasons, vetting
    from app.services.base import Actor

    with fresh_postgres_database("sangplats_multi") as url:
        app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
        secret = pyotp.random_base32()
        with app.app_context():
            admin = accounts.create_admin("granskare@example.se", PASSWORD, "Granskare", totp_secret=secret)
            seasons.create_season(Actor(admin.id, "admin"), {
                "year": YEAR, "name": f"Almedalsveckan {YEAR}", "first_night": FIRST_NIGHT, "last_night": LAST_NIGHT,
                "bookings_open_at": datetime.now(UTC) - timedelta(days=1), "price_cap_ore": 90000,
                "max_increase_pct": 10, "strike_limit": 3, "hold_minutes": 15,
                "free_cancellation_until": FIRST_NIGHT - timedelta(days=60), "late_cancellation_refund_pct": 50,
            })
            newcomer = accounts.register_user("ny.vard@example.se", PASSWORD, "Ny Värd", "host")
            vetting.submit_profile(Actor(newcomer.id, "host"), legal_name="Ny Värd AB", phone="+46 498 123 456",
                                   address="Strandgatan 1", postal_code="621 56", right_to_rent=True)
            host = accounts.register_user("vard@example.se", PASSWORD, "Värd", "host")
            host_actor = Actor(host.id, "host")
            vetting.submit_profile(host_actor, legal_name="Värd AB", phone="+46 498 123 456",
                                   address="Strandgatan 2", postal_code="621 56", right_to_rent=True)
            vetting.decide(Actor(admin.id, "admin"), host.id, "approve", "checked")
            listing = listings.create_listing(host_actor, title="Huset", description="Sängar.",
                                              address="Strandgatan 2", postal_code="621 56", walking_minutes=5)
            room = listings.add_room(host_actor, listing.id, "Rum 1")
            bed_ids = []
            for n in range(4):
                bed = listings.add_bed(host_actor, room.id, f"Säng {n + 1}", "single")
                pricing.set_price(host_actor, bed.id, YEAR, 40000)
                bed_ids.append(bed.id)
            from app.models import Season
            season = db.session.scalars(db.select(Season).where(Season.year == YEAR)).one()
            listings.publish(host_actor, listing.id, season.terms_version)
            coordinator = accounts.register_user("samordnare@example.se", PASSWORD, "Samordnare", "coordinator")
            delegation = delegations.create_delegation(Actor(coordinator.id, "coordinator"), "Förening",
                                                       "802000-1239")
            world = {"admin_email": admin.email, "totp_secret": secret, "newcomer_id": newcomer.id,
                     "newcomer_email": newcomer.email, "bed_ids": bed_ids, "delegation_id": delegation.id,
                     "coordinator_token": accounts.issue_token(coordinator), "coordinator_id": coordinator.id}
            db.session.remove()
            db.engine.dispose()
        shared = {"APP_ENV": "development", "SECRET_KEY": "shared-secret-" + uuid.uuid4().hex,
                  "RATELIMIT_STORAGE_URI": REDIS_URL, "PROXY_FIX_X_FOR": "1", "METRICS_TOKEN": METRICS_TOKEN,
                  "LOG_LEVEL": "INFO", "BASE_URL": "http://127.0.0.1"}
        started = []
        try:
            for name in ("one", "two"):
                folder = tmp_path_factory.mktemp(f"server-{name}")
                env = {**shared, "UPLOAD_DIR": str(folder / "uploads"), "MAIL_OUTBOX_DIR": str(folder / "mail"),
                       "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics")}
                server = GunicornServer(url, workers=2, log_path=folder / "gunicorn.log", extra_env=env,
                                        config_file=ROOT / "deploy" / "gunicorn.conf.py", cwd=folder)
                server.folder = folder  # type: ignore[attr-defined]
                started.append(server.start())
            yield started[0], started[1], world
        finally:
            for server in started:
                server.stop()


def _client_address() -> str:
    """An address of its own for each test (behind PROXY_FIX_X_FOR=1): its rate-limit counts start at zero."""
    return f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def _browser(address: str) -> requests.Session:
    browser = requests.Session()
    browser.headers.update({"X-Forwarded-For": address, "User-Agent": "multi-server-test"})
    return browser


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def _sign_in(browser, base: str, email: str, otp: str | None = None) -> None:
    page = browser.get(f"{base}/login", timeout=30)
    data = {"csrf_token": _csrf(page.text), "email": email, "password": PASSWORD}
    if otp:
        data["otp"] = otp
    answer = browser.post(f"{base}/login", data=data, allow_redirects=False, timeout=30)
    assert answer.status_code == 302, answer.text[:500]


def test_an_upload_through_one_server_is_served_by_the_other(servers):
    one, two, world = servers
    host = _browser(_client_address())
    _sign_in(host, one.base_url, world["newcomer_email"])
    page = host.get(f"{one.base_url}/account/vetting-document", timeout=30)
    sent = host.post(f"{one.base_url}/account/vetting-document", data={"csrf_token": _csrf(page.text)},
                     files={"document": ("lagfart.pdf", PDF, "application/pdf")}, allow_redirects=False, timeout=30)
    assert sent.status_code == 302, sent.text[:500]

    admin = _browser(_client_address())
    _sign_in(admin, two.base_url, world["admin_email"], otp=pyotp.TOTP(world["totp_secret"]).now())
    got = admin.get(f"{two.base_url}/account/vetting-document/{world['newcomer_id']}", timeout=30)
    assert got.status_code == 200, got.text[:500]
    assert got.content == PDF and got.headers["Content-Type"] == "application/pdf"
    assert not any((server.folder / "uploads").exists() for server in (one, two))
    print(f"\nupload: POST through server one (:{one.port}) -> {sent.status_code}; admin GET through server two "
          f"(:{two.port}) -> {got.status_code}, {len(got.content)} bytes, sha256 "
          f"{hashlib.sha256(got.content).hexdigest()[:16]}… equal to the upload's; no upload folder on either server")


def test_a_session_made_on_one_server_works_on_the_other(servers):
    one, two, world = servers
    on_one = _browser(_client_address())
    _sign_in(on_one, one.base_url, world["newcomer_email"])
    on_two = _browser(on_one.headers["X-Forwarded-For"])
    on_two.cookies.update(on_one.cookies)  # the cookie the first server set, sent to the second
    page = on_two.get(f"{two.base_url}/account/vetting-document", allow_redirects=False, timeout=30)
    assert page.status_code == 200, (page.status_code, page.headers.get("Location"))
    # A form fetched from one server is accepted by the other (the CSRF token lives in the shared session).
    form = on_one.get(f"{one.base_url}/account/vetting-document", timeout=30)
    on_two.cookies.update(on_one.cookies)
    sent = on_two.post(f"{two.base_url}/account/vetting-document", data={"csrf_token": _csrf(form.text)},
                       files={"document": ("lagfart.pdf", PDF, "application/pdf")}, allow_redirects=False, timeout=30)
    assert sent.status_code == 302, sent.text[:300]
    print(f"\nsession: signed in on :{one.port}; the same cookie on :{two.port} -> GET {page.status_code}, "
          f"a form from :{one.port} posted to :{two.port} -> {sent.status_code}")


def test_the_rate_limit_reached_through_one_server_answers_429_through_the_other(servers):
    one, two, _world = servers
    client = _browser(_client_address())
    answers = [client.post(f"{one.base_url}/api/v1/tokens", json={}, timeout=30).status_code for _ in range(120)]
    assert 429 not in answers and set(answers) == {422}, sorted(set(answers))
    through_two = client.post(f"{two.base_url}/api/v1/tokens", json={}, timeout=30)
    assert through_two.status_code == 429, through_two.text[:300]
    assert through_two.json()["code"] == "rate_limited" and int(through_two.headers["Retry-After"]) > 0
    back_on_one = client.post(f"{one.base_url}/api/v1/tokens", json={}, timeout=30)
    assert back_on_one.status_code == 429
    other_client = _browser(_client_address())
    assert other_client.post(f"{two.base_url}/api/v1/tokens", json={}, timeout=30).status_code == 422
    print(f"\nrate limit: 120 POST /api/v1/tokens through :{one.port} -> all 422; the 121st through :{two.port} -> "
          f"{through_two.status_code} (Retry-After {through_two.headers['Retry-After']}); again through :{one.port} "
          f"-> {back_on_one.status_code}; another client through :{two.port} -> 422")


def _scrape(server, token=METRICS_TOKEN) -> dict:
    answer = requests.get(f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def test_metrics_add_up_every_worker_process_and_refuse_requests_without_the_token(servers):
    one, two, world = servers
    assert requests.get(f"{one.base_url}/metrics", timeout=30).status_code == 401
    assert requests.get(f"{one.base_url}/metrics", headers={"Authorization": "Bearer nope"},
                        timeout=30).status_code == 403
    before = _scrape(one)
    headers = {"Authorization": f"Bearer {world['coordinator_token']}", "Connection": "close"}
    statuses, codes = [], []
    for bed_id in world["bed_ids"][:3] + world["bed_ids"][:2]:  # three beds, then two of them again
        # A new connection for each request, so that both worker processes of the server answer some.
        answer = requests.post(f"{one.base_url}/api/v1/bookings", headers=headers, timeout=30, json={
            "delegation_id": world["delegation_id"], "bed_ids": [bed_id], "check_in": f"{YEAR}-06-21",
            "check_out": f"{YEAR}-06-23", "accept_contract": True, "payment_method": "invoice"})
        statuses.append(answer.status_code)
        codes.append(answer.json().get("code"))
    assert statuses == [201, 201, 201, 409, 409], list(zip(statuses, codes, strict=True))
    code = codes[-1]
    after = _scrape(one)
    booked = after.get(("sangplats_bookings_total", (("payment_method", "invoice"),)), 0) - before.get(
        ("sangplats_bookings_total", (("payment_method", "invoice"),)), 0)
    refused = after.get(("sangplats_refusals_total", (("code", code),)), 0) - before.get(
        ("sangplats_refusals_total", (("code", code),)), 0)
    assert (booked, refused) == (3, 2)
    files = sorted(path.name for path in (one.folder / "metrics").glob("counter_*.db"))
    assert len(files) >= 1
    # The other server has its own folder (another machine): it counted none of these.
    assert _scrape(two).get(("sangplats_bookings_total", (("payment_method", "invoice"),)), 0) == 0
    print(f"\nmetrics on :{one.port}: 3 bookings and 2 refusals ({code}) counted as {booked:g} and {refused:g} "
          f"from {len(files)} worker file(s) {files}; /metrics without a token 401, with a wrong one 403")


def test_the_access_log_is_json_with_the_request_id_route_and_user(servers):
    one, _two, world = servers
    request_id = "multi-" + uuid.uuid4().hex[:12]
    answer = requests.get(f"{one.base_url}/api/v1/me", timeout=30, headers={
        "X-Request-ID": request_id, "Authorization": f"Bearer {world['coordinator_token']}"})
    assert answer.status_code == 200 and answer.headers["X-Request-ID"] == request_id
    deadline = time.monotonic() + 10  # the access line is written right after the answer (unbuffered)
    while True:
        lines = [json.loads(line) for line in one.log_tail(5_000_000).splitlines() if line.startswith("{")]
        access = [line for line in lines
                  if line.get("logger") == "gunicorn.access" and line.get("request_id") == request_id]
        if access or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(access) == 1, lines[-5:]
    assert (access[0]["status"], access[0]["path"], access[0]["route"], access[0]["user_id"]) == (
        200, "/api/v1/me", "api.me", world["coordinator_id"])
    assert all({"time", "level", "message"} <= set(line) for line in lines)
    print(f"\naccess log: {json.dumps(access[0], ensure_ascii=False)}")
