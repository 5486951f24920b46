"""Issue 5: sign-in limits, two-factor, sessions, headers, passwords, uploads, mass assignment."""
import io
import re
import time
from types import SimpleNamespace

import pyotp
import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, HostProfile, User
from app.services import accounts
from app.services.errors import Unauthorized
from tests.helpers import PASSWORD, YEAR, csrf_from


def test_ten_failed_sign_ins_lock_the_account_for_the_window(api_as, make_user):
    user = make_user("coordinator")
    anon = api_as()
    for _ in range(10):
        assert anon.post("/tokens", {"email": user.email, "password": "wrong-password-x"}).status_code == 401
    locked = anon.post("/tokens", {"email": user.email, "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.get_json()["code"] == "rate_limited" and int(locked.headers["Retry-After"]) > 0
    # Another account from the same address is not locked.
    other = make_user("coordinator")
    assert anon.post("/tokens", {"email": other.email, "password": PASSWORD}).status_code == 201


def test_lock_expires_after_fifteen_minutes(app, make_user):
    from datetime import timedelta

    from app.services.accounts import RateLimited
    from tests.helpers import NOW
    user = make_user("coordinator")
    for i in range(10):
        with pytest.raises(Unauthorized):
            accounts.authenticate(user.email, "wrong-password-x", now=NOW + timedelta(seconds=i))
    with pytest.raises(RateLimited):
        accounts.authenticate(user.email, PASSWORD, now=NOW + timedelta(minutes=14))
    assert accounts.authenticate(user.email, PASSWORD, now=NOW + timedelta(minutes=15, seconds=11)).id == user.id


def test_one_address_may_make_sixty_account_requests_a_minute(api_as):
    anon = api_as()
    answers = {anon.post("/tokens", {"email": f"nobody{i}@example.se", "password": "wrong-password"}).status_code
               for i in range(60)}
    assert answers == {401}


def test_admin_token_needs_a_fresh_totp_code(api_as, make_admin):
    secret = pyotp.random_base32()
    admin = make_admin(totp_secret=secret)
    anon = api_as()
    body = {"email": admin.email, "password": PASSWORD}
    assert anon.post("/tokens", body).get_json()["code"] == "otp_required"
    assert anon.post("/tokens", {**body, "otp": "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"}
                     ).get_json()["code"] == "invalid_otp"
    code = pyotp.TOTP(secret).now()
    assert anon.post("/tokens", {**body, "otp": code}).status_code == 201
    replay = anon.post("/tokens", {**body, "otp": code})
    assert replay.status_code == 401 and replay.get_json()["code"] == "invalid_otp"  # each code once


def test_unenrolled_admin_must_enrol(api_as, make_admin):
    admin = make_admin()
    response = api_as().post("/tokens", {"email": admin.email, "password": PASSWORD, "otp": "123456"})
    assert response.status_code == 403 and response.get_json()["code"] == "two_factor_enrolment_required"


def test_cli_create_admin_with_totp(runner, api_as):
    secret = pyotp.random_base32()
    result = runner.invoke(args=["users", "create-admin", "--email", "boss@example.se", "--password", PASSWORD,
                                 "--name", "Boss", "--totp-secret", secret])
    assert result.exit_code == 0, result.output
    response = api_as().post("/tokens", {"email": "boss@example.se", "password": PASSWORD,
                                         "otp": pyotp.TOTP(secret).now()})
    assert response.status_code == 201 and response.get_json()["user"]["role"] == "admin"
    weak = runner.invoke(args=["users", "create-admin", "--email", "b2@example.se", "--password", "short",
                               "--name", "B"])
    assert weak.exit_code != 0 and "minst 10 tecken" in weak.output  # the command line speaks Swedish


def test_page_login_enrols_admin_then_requires_code(client, make_admin, login):
    admin = make_admin()
    response = login(admin)
    assert response.status_code == 302 and response.headers["Location"].endswith("/account/two-factor")
    page = client.get("/account/two-factor")
    assert page.status_code == 200 and b"data:image/svg+xml" in page.data
    secret = re.search(r"<code>([A-Z2-7]+)</code>", page.get_data(as_text=True)).group(1)
    done = client.post("/account/two-factor", data={"csrf_token": csrf_from(page),
                                                    "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200
    codes = re.findall(r"<code>([0-9a-f]{4}-[0-9a-f]{4})</code>", done.get_data(as_text=True))
    assert len(codes) == 10
    db.session.expire_all()
    assert db.session.get(User, admin.id).totp_secret == secret
    # A recovery code works once in place of the TOTP code.
    fresh = client.application.test_client()
    from tests.helpers import csrf_from as token_of
    page = fresh.get("/login")
    ok = fresh.post("/login", data={"csrf_token": token_of(page), "email": admin.email, "password": PASSWORD,
                                    "otp": codes[0]})
    assert ok.status_code == 302 and "/admin" in ok.headers["Location"]
    again = client.application.test_client()
    page = again.get("/login")
    refused = again.post("/login", data={"csrf_token": token_of(page), "email": admin.email,
                                         "password": PASSWORD, "otp": codes[0]})
    assert refused.status_code == 401


def test_password_change_ends_other_sessions_and_tokens(client, app, make_user, login, api_as):
    user = make_user("coordinator")
    api = api_as(user)
    other_device = app.test_client()
    from tests.helpers import csrf_from as token_of
    page = other_device.get("/login")
    other_device.post("/login", data={"csrf_token": token_of(page), "email": user.email, "password": PASSWORD})
    assert other_device.get("/account/password").status_code == 200
    login(user)
    page = client.get("/account/password")
    response = client.post("/account/password", data={
        "csrf_token": csrf_from(page), "current_password": PASSWORD, "password": "a-brand-new-secret",
        "confirm": "a-brand-new-secret"})
    assert response.status_code == 302
    assert client.get("/account/password").status_code == 200  # this session goes on
    assert other_device.get("/account/password").status_code == 302  # the other one is gone
    assert api.get("/me").status_code == 401


def test_logout_ends_the_session_on_the_server(client, make_user, login):
    user = make_user("coordinator")
    login(user)
    stolen_cookie = client.get_cookie("session").value
    page = client.get("/account/password")
    client.post("/logout", data={"csrf_token": csrf_from(page)})
    replay = client.application.test_client()
    replay.set_cookie("session", stolen_cookie, domain="localhost")
    assert replay.get("/account/password").status_code == 302


def test_session_cookie_flags(client, make_user, login):
    user = make_user("coordinator")
    response = login(user)
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize("next_url, lands_on", [
    ("/coordinator/bookings", "/coordinator/bookings"),
    ("//evil.example", "/coordinator/"),
    ("/%5Cevil.example", "/coordinator/"),  # a backslash: browsers read /\\evil.example as //evil.example
    ("/%09/evil.example", "/coordinator/"),  # a tab: browsers drop it, leaving //evil.example
    ("https://evil.example/", "/coordinator/"),
])
def test_sign_in_goes_back_only_to_a_page_of_this_site(client, make_user, next_url, lands_on):
    user = make_user("coordinator")
    page = client.get("/login")
    response = client.post(f"/login?next={next_url}",
                           data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_from(page)})
    assert response.status_code == 302 and response.headers["Location"] == lands_on


def test_a_nul_character_is_refused_at_every_door_not_a_500(client, api_as, make_user):
    """PostgreSQL text cannot hold NUL: before this guard these answered 500 there."""
    coordinator = api_as(make_user("coordinator"))
    refused = coordinator.post("/delegations", {"name": "a\u0000b", "organisation_number": "802000-1239"})
    assert refused.status_code == 422 and refused.get_json()["code"] == "invalid"  # the API's malformed input
    assert api_as().post("/tokens", {"email": "a\u0000@example.se", "password": "x"}).status_code == 422
    assert client.get("/contracts/verify?number=%00&sha256=%00").status_code == 400
    assert client.get("/api/v1/contracts/verify?number=%00").get_json()["code"] == "invalid"
    assert client.get("/calendar/host/%00.ics").status_code == 400
    page = client.get("/login")
    assert client.post("/login", data={"email": "a\x00@example.se", "password": PASSWORD,
                                       "csrf_token": csrf_from(page)}).status_code == 400
    assert coordinator.post("/delegations", {"name": "Föreningen", "organisation_number": "802000-1239"}
                            ).status_code == 201


def test_production_cookies_are_secure_and_hsts():
    from config import ProductionConfig
    assert ProductionConfig.SESSION_COOKIE_SECURE is True and ProductionConfig.HSTS is True


def test_only_the_tests_hash_passwords_cheaply(app):
    """TestingConfig's cheap argon2 cost (PASSWORD_HASH_COST) never reaches production or development, and a hash
    carries its own cost, so a production-strength hash still verifies under the testing app and vice versa."""
    from flask import Flask

    from app.services.passwords import hash_password, verify_password
    from config import DevelopmentConfig, ProductionConfig
    assert ProductionConfig.PASSWORD_HASH_COST is None and DevelopmentConfig.PASSWORD_HASH_COST is None
    cheap = hash_password(PASSWORD)
    assert cheap.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    production = Flask(__name__)
    production.config.from_object(ProductionConfig)
    with production.app_context():
        strong = hash_password(PASSWORD)
        assert strong.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        assert verify_password(cheap, PASSWORD) and not verify_password(cheap, PASSWORD + "x")
    assert verify_password(strong, PASSWORD) and not verify_password(strong, PASSWORD + "x")
    assert not verify_password(None, PASSWORD)


def test_security_headers(client):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"]


def test_csrf_is_required_on_forms(client, make_user):
    user = make_user("coordinator")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400


def test_common_password_refused(api_as):
    response = api_as().post("/users", {"email": "x@example.se", "password": "qwertyuiop", "name": "X",
                                        "role": "host"})
    assert response.status_code == 422 and "för vanligt" in response.get_json()["errors"]["password"][0]
    english = api_as().post("/users", {"email": "x@example.se", "password": "qwertyuiop", "name": "X",
                                       "role": "host"}, headers={"Accept-Language": "en"})
    assert english.status_code == 422 and "too common" in english.get_json()["errors"]["password"][0]


def test_password_reset_link_is_single_use(client, make_user):
    user = make_user("coordinator")
    token = accounts.password_reset_token(user)
    page = client.get(f"/password/reset/{token}")
    assert page.status_code == 200
    done = client.post(f"/password/reset/{token}", data={"csrf_token": csrf_from(page),
                                                         "password": "a-brand-new-secret",
                                                         "confirm": "a-brand-new-secret"})
    assert done.status_code == 302
    assert client.get(f"/password/reset/{token}").status_code == 400
    assert client.get("/password/reset/forged-token").status_code == 400
    assert accounts.authenticate(user.email, "a-brand-new-secret").id == user.id


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _upload(client, name, data):
    page = client.get("/account/vetting-document")
    return client.post("/account/vetting-document", data={
        "csrf_token": csrf_from(page), "document": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def test_vetting_document_upload_checks_content_and_is_private(client, app, make_host, make_admin, login):
    host = make_host(approved=False)
    login(host)
    assert _upload(client, "deed.pdf", b"MZ\x90\x00 not a pdf").status_code == 422
    assert _upload(client, "deed.png", PDF).status_code == 422  # content and name disagree
    assert _upload(client, "big.pdf", PDF + b"0" * (5 * 1024 * 1024)).status_code in (413, 422)
    assert _upload(client, "deed.pdf", PDF).status_code == 302
    profile = db.session.get(HostProfile, host.id)
    db.session.refresh(profile)
    assert profile.document_id is not None and profile.document_original_name == "deed.pdf"
    own = client.get(f"/account/vetting-document/{host.id}")
    assert own.status_code == 200 and own.data == PDF
    other_client = app.test_client()
    other = make_host()
    page = other_client.get("/login")
    other_client.post("/login", data={"csrf_token": csrf_from(page), "email": other.email, "password": PASSWORD})
    assert other_client.get(f"/account/vetting-document/{host.id}").status_code == 404
    assert app.test_client().get(f"/account/vetting-document/{host.id}").status_code == 302


def test_client_cannot_set_protected_fields(api_as, make_user, make_listing, make_delegation, make_season):
    response = api_as().post("/users", {"email": "sneaky@example.se", "password": PASSWORD, "name": "S",
                                        "role": "admin"})
    assert response.status_code == 422
    host_user = make_user("host")
    host = api_as(host_user)
    profile = host.put("/host/profile", {"legal_name": "S AB", "phone": "+46 70 1234567", "address": "Gatan 1",
                                         "postal_code": "621 56", "right_to_rent": True,
                                         "vetting_status": "approved", "strikes": -5})
    assert profile.get_json()["vetting_status"] == "pending" and profile.get_json()["strikes"] == 0
    listing = make_listing(beds=1)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    booking = api_as(coordinator).post("/bookings", {
        "delegation_id": delegation.id, "bed_ids": [listing.beds()[0].id], "check_in": f"{YEAR}-06-21",
        "check_out": f"{YEAR}-06-22", "accept_contract": True, "payment_method": "invoice", "total_ore": 1,
        "status": "completed", "coordinator_id": host_user.id})
    assert booking.status_code == 201
    data = booking.get_json()
    assert data["total_ore"] == 50000 and data["status"] == "confirmed"


def test_security_events_are_audited(api_as, make_user):
    user = make_user("coordinator")
    api_as().post("/tokens", {"email": user.email, "password": "wrong-password-x"})
    api_as().post("/tokens", {"email": user.email, "password": PASSWORD})
    actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"auth.login_failed", "auth.login", "auth.token_issued", "user.created"} <= actions


def test_one_address_is_limited_past_its_budget(api_as, monkeypatch):
    # The 121 requests fall in one minute of the limiter's clock however slow the machine is: its in-memory
    # store reads a clock that stands still for this test (the budget is under test, not the machine's speed).
    import limits.storage.memory
    frozen = time.time()
    monkeypatch.setattr(limits.storage.memory, "time", SimpleNamespace(time=lambda: frozen))
    anon = api_as()
    answers = [anon.post("/tokens", {"email": f"nobody{i}@example.se", "password": "wrong-password"})
               for i in range(121)]
    assert {a.status_code for a in answers[:120]} == {401}
    limited = answers[120]
    assert limited.status_code == 429 and limited.mimetype == "application/problem+json"
    assert limited.get_json()["code"] == "rate_limited" and int(limited.headers["Retry-After"]) > 0


def test_rate_limits_shared_through_redis(database_url, tmp_path):
    """Production keeps the counts in Redis so that every worker sees them: two app instances share one budget."""
    import uuid

    import redis

    from app import create_app
    from tests.live_server import IN_CI
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping()
    except redis.RedisError:
        if IN_CI:
            pytest.fail("Redis at 127.0.0.1:6379 is not reachable (.ci/run starts it).")
        pytest.skip("Redis is not reachable here.")
    address = "127.{}.{}.{}".format(*uuid.uuid4().bytes[:3])  # a fresh address: counts from other runs don't apply
    apps = [create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url,
                                   "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379"}) for _ in range(2)]
    statuses = []
    for i in range(121):
        client = apps[i % 2].test_client()
        statuses.append(client.post("/api/v1/tokens", json={"email": f"x{i}@example.se", "password": "wrong-password"},
                                    environ_base={"REMOTE_ADDR": address}).status_code)
    assert statuses[:120] == [401] * 120 and statuses[120] == 429
    counters = redis.Redis(host="127.0.0.1", port=6379).keys(f"*{address}*")
    assert counters, "the counts were not kept in Redis"
