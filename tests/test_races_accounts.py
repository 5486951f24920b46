"""Account races over HTTP against gunicorn with 4 workers, on PostgreSQL (READ COMMITTED).

Racers are released together by a threading.Barrier, 10 rounds each, then the invariants are
checked through the API and the database:

(a) parallel sign-ups with one e-mail, through POST /api/v1/users and through the /register page:
    exactly one account is made, every other answer is 409 `email_taken` (never a 500), one user row;
(b) one TOTP code sent twice at once by an admin enrolled in two-factor, through POST /api/v1/tokens
    and through the /login page: exactly one sign-in, the other 401 `invalid_otp`; one `auth.otp_ok`.

SQLite serialises writers, so these races only exist on PostgreSQL; without it the tests skip
(and fail with CI=true, as everywhere else).
"""
from __future__ import annotations

import re
from collections import Counter as Tally
from collections.abc import Callable

import pyotp
import pytest
import requests
from sqlalchemy import create_engine, text

from tests.live_server import IN_CI, GunicornServer, fresh_postgres_database, postgres_reachable, race

pytestmark = pytest.mark.serial  # gunicorn races: `make test` runs them alone

ROUNDS = 10
SIGNUP_RACERS = 6
PASSWORD = "correct-horse-battery"


class World:
    def __init__(self, url: str, app, server: GunicornServer):
        self.url, self.app, self.server = url, app, server
        self.engine = create_engine(url)
        self.counter = 0

    def next(self) -> int:
        self.counter += 1
        return self.counter

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    if not postgres_reachable():
        if IN_CI:
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is not reachable, and CI=true makes its tests mandatory.")
        pytest.skip("PostgreSQL is not reachable here (its tests are mandatory with CI=true).")
    from app import create_app
    from app.extensions import db

    with fresh_postgres_database("sangplats_races_accounts") as url:
        app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
        log = tmp_path_factory.mktemp("races_accounts") / "gunicorn.log"
        with GunicornServer(url, workers=4, log_path=log) as server:
            w = World(url, app, server)
            yield w
            w.engine.dispose()
        with app.app_context():
            db.engine.dispose()


def _json(response) -> tuple[int, object]:
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, {"raw": response.text[:200]}


def _connect(base: str) -> Callable:
    def prepare(session):
        session.get(base + "/healthz", timeout=30)  # connected before the start
    return prepare


def _page_with_csrf(url: str) -> Callable:
    def prepare(session):
        page = session.get(url, timeout=30)
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
        assert page.status_code == 200 and match, f"no form at {url}: {page.status_code}"
        return match.group(1)
    return prepare


def _page_outcome(response) -> tuple[int, str]:
    """A page's answer: 302 (signed in / signed up) or the status and the flashed message."""
    if response.status_code == 302:
        return 302, response.headers.get("Location", "")
    flashed = re.findall(r'<p class="flash[^"]*">(.*?)</p>', response.text, re.S)
    return response.status_code, " ".join(" ".join(f.split()) for f in flashed)[:200] or response.text[:120]


def user_rows(world: World, email: str) -> int:
    return world.scalar("SELECT count(*) FROM users WHERE email = :e", e=email)


def test_parallel_api_sign_ups_with_one_email_make_one_account(world):
    base = world.server.base_url
    failures = []
    for round_ in range(ROUNDS):
        email = f"samma{world.next()}@example.se"
        body = {"email": email, "password": PASSWORD, "name": "Samordnare", "role": "coordinator"}

        def send(session, _prepared):
            return _json(session.post(base + "/api/v1/users", json=body, timeout=60))
        results = race([(_connect(base), send)] * SIGNUP_RACERS)
        statuses = Tally(status for status, _ in results)
        codes = Tally(b.get("code") for status, b in results if status == 409 and isinstance(b, dict))
        rows = user_rows(world, email)
        token = requests.post(base + "/api/v1/tokens", json={"email": email, "password": PASSWORD}, timeout=30)
        problems = []
        if statuses != Tally({201: 1, 409: SIGNUP_RACERS - 1}) or codes != Tally({"email_taken": SIGNUP_RACERS - 1}):
            problems.append(f"answers {dict(statuses)}, 409 codes {dict(codes)}: {results}")
        if rows != 1:
            problems.append(f"{rows} user rows for {email}")
        if token.status_code != 201:
            problems.append(f"the account cannot sign in: {token.status_code}")
        if problems:
            failures.append(f"round {round_}: " + "; ".join(problems))
        print(f"[signup api] round {round_}: answers {dict(statuses)}, 409 codes {dict(codes)}, user rows {rows}")
    assert failures == []


def test_parallel_page_sign_ups_with_one_email_make_one_account(world):
    base = world.server.base_url
    failures = []
    for round_ in range(ROUNDS):
        email = f"sida{world.next()}@example.se"

        def send(session, csrf):
            return _page_outcome(session.post(base + "/register", data={
                "csrf_token": csrf, "name": "Samordnare", "email": email, "password": PASSWORD,
                "role": "coordinator"}, allow_redirects=False, timeout=60))
        results = race([(_page_with_csrf(base + "/register"), send)] * SIGNUP_RACERS)
        statuses = Tally(status for status, _ in results)
        rows = user_rows(world, email)
        problems = []
        if statuses != Tally({302: 1, 409: SIGNUP_RACERS - 1}):
            problems.append(f"answers {dict(statuses)}: {[r for r in results if r[0] != 302]}")
        if rows != 1:
            problems.append(f"{rows} user rows for {email}")
        if problems:
            failures.append(f"round {round_}: " + "; ".join(problems))
        print(f"[signup page] round {round_}: answers {dict(statuses)}, user rows {rows}")
    assert failures == []


def new_admin_with_totp(world: World) -> tuple[str, str, int]:
    """A fresh admin enrolled in two-factor (fresh, so the failed sign-ins of the races never lock it)."""
    from app.extensions import db
    from app.services import accounts
    with world.app.app_context():
        secret = pyotp.random_base32()
        admin = accounts.create_admin(f"admin{world.next()}@example.se", PASSWORD, "Admin", totp_secret=secret)
        result = admin.email, secret, admin.id
        db.session.remove()
    return result


def otp_audit(world: World, admin_id: int) -> Tally:
    with world.engine.connect() as conn:
        return Tally(dict(conn.execute(text(
            "SELECT action, count(*) FROM audit_entries WHERE object_type = 'user' AND object_id = :id "
            "AND action IN ('auth.otp_ok', 'auth.otp_failed', 'auth.login') GROUP BY action"),
            {"id": str(admin_id)}).all()))


def test_one_totp_code_sent_twice_at_once_to_the_token_door_signs_in_once(world):
    base = world.server.base_url
    failures = []
    for round_ in range(ROUNDS):
        email, secret, admin_id = new_admin_with_totp(world)
        code = pyotp.TOTP(secret).now()

        def send(session, _prepared):
            return _json(session.post(base + "/api/v1/tokens", json={"email": email, "password": PASSWORD,
                                                                     "otp": code}, timeout=60))
        results = race([(_connect(base), send)] * 2)
        statuses = sorted(status for status, _ in results)
        codes = [b.get("code") for status, b in results if status == 401 and isinstance(b, dict)]
        audits = otp_audit(world, admin_id)
        tokens = world.scalar("SELECT count(*) FROM api_tokens WHERE user_id = :id", id=admin_id)
        problems = []
        if statuses != [201, 401] or codes != ["invalid_otp"]:
            problems.append(f"answers {statuses}, 401 codes {codes}: {results}")
        if audits["auth.otp_ok"] != 1 or tokens != 1:
            problems.append(f"auth.otp_ok records {audits['auth.otp_ok']}, api tokens {tokens}")
        if problems:
            failures.append(f"round {round_}: " + "; ".join(problems))
        print(f"[totp api] round {round_}: answers {statuses}, 401 codes {codes}, otp_ok {audits['auth.otp_ok']}, "
              f"tokens {tokens}")
    assert failures == []


def test_one_totp_code_sent_twice_at_once_to_the_login_page_signs_in_once(world):
    base = world.server.base_url
    failures = []
    for round_ in range(ROUNDS):
        email, secret, admin_id = new_admin_with_totp(world)
        code = pyotp.TOTP(secret).now()

        def send(session, csrf):
            answer = _page_outcome(session.post(base + "/login", data={
                "csrf_token": csrf, "email": email, "password": PASSWORD, "otp": code},
                allow_redirects=False, timeout=60))
            # Signed in or not, as the admin pages see it.
            admin_page = session.get(base + "/admin/", allow_redirects=False, timeout=30).status_code
            return answer[0], (answer[1], admin_page)
        results = race([(_page_with_csrf(base + "/login"), send)] * 2)
        statuses = sorted(status for status, _ in results)
        admin_pages = sorted(page for _, (_, page) in results)
        audits = otp_audit(world, admin_id)
        problems = []
        if statuses != [302, 401]:
            problems.append(f"answers {statuses}: {results}")
        elif not any("redan använd" in text_ for status, (text_, _) in results if status == 401):
            problems.append(f"the 401 page does not say the code is wrong or used: {results}")
        if admin_pages != [200, 302]:
            problems.append(f"/admin answered {admin_pages} to the two sessions")
        if audits["auth.otp_ok"] != 1 or audits["auth.login"] != 1:
            problems.append(f"auth.otp_ok records {audits['auth.otp_ok']}, auth.login records {audits['auth.login']}")
        if problems:
            failures.append(f"round {round_}: " + "; ".join(problems))
        print(f"[totp page] round {round_}: answers {statuses}, /admin {admin_pages}, otp_ok {audits['auth.otp_ok']}")
    assert failures == []
