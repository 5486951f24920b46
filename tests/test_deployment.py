"""A deployment trusts nothing it should not: start-up refusals, BASE_URL links, trusted hosts, the proxy's
client address, signed but unusable Stripe events, append-only tables, an unreachable database, no-store."""
from __future__ import annotations

import json
import os
import re
import subprocess  # nosec B404 - starts the project's own app
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from app import create_app
from app.extensions import db, limiter
from app.models import AuditEntry, OutboxEmail, StripeEvent
from tests.helpers import PASSWORD, YEAR
from tests.live_server import free_port
from tests.stripe_fixtures import event_payload, signed_headers

ROOT = Path(__file__).resolve().parent.parent
FLASK = ROOT / ".venv" / "bin" / "flask"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
PG_DOWN = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
SAFE_PRODUCTION = {
    "APP_ENV": "production", "SECRET_KEY": "a-long-secret-of-this-deployment-only-0123456789",
    "DATABASE_URL": PG_DOWN, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/15",
    "STRIPE_SECRET_KEY": "sk_live_deployment", "STRIPE_PUBLISHABLE_KEY": "pk_live_deployment",
    "STRIPE_WEBHOOK_SECRET": "whsec_deployment_own", "BASE_URL": "https://sangplats.se",
}
DEPLOYMENT_KEYS = ("APP_ENV", "SECRET_KEY", "DATABASE_URL", "RATELIMIT_STORAGE_URI", "STRIPE_SECRET_KEY",
                   "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET", "BASE_URL", "TRUSTED_HOSTS", "PROXY_FIX_X_FOR",
                   "MAIL_SERVER", "MAIL_PORT", "MAIL_USERNAME", "MAIL_PASSWORD", "MAIL_SECURITY")


def _env(**changes) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in DEPLOYMENT_KEYS}
    env.update(SAFE_PRODUCTION)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _flask(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(FLASK), "--app", "wsgi", *args], cwd=ROOT, env=env, capture_output=True,  # nosec B603
                          text=True, timeout=60)


UNSAFE = {
    "app_env_unset_without_secret_key": {"APP_ENV": None, "SECRET_KEY": None},
    "production_without_secret_key": {"SECRET_KEY": None},
    "production_with_the_public_key": {"SECRET_KEY": "dev-only-secret-change-me"},
    "staging_without_secret_key": {"APP_ENV": "staging", "SECRET_KEY": None},
    "sqlite": {"DATABASE_URL": "sqlite:////tmp/sangplats-prod.db"},
    "no_database_url": {"DATABASE_URL": None},
    "memory_rate_limits": {"RATELIMIT_STORAGE_URI": "memory://"},
    "no_rate_limit_storage": {"RATELIMIT_STORAGE_URI": None},
    "stripe_test_key": {"STRIPE_SECRET_KEY": "sk_test_abc"},
    "stripe_default_key": {"STRIPE_SECRET_KEY": None},
    "development_webhook_secret": {"STRIPE_WEBHOOK_SECRET": "whsec_sangplats_dev"},
    "mail_password_in_clear": {"MAIL_SERVER": "smtp.example.com", "MAIL_USERNAME": "u", "MAIL_PASSWORD": "p"},
    "mail_security_unknown": {"MAIL_SECURITY": "ssl"},
    "mail_port_not_a_number": {"MAIL_PORT": "smtp"},
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_an_unsafe_production_configuration_refuses_to_start(case):
    result = _flask(_env(**UNSAFE[case]), "routes")
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, result.stdout[-500:]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "Sängplats will not start" in lines[0]


def test_a_safe_production_configuration_starts_and_development_needs_nothing():
    assert _flask(_env(), "routes").returncode == 0
    development = _flask(_env(APP_ENV="development", SECRET_KEY=None, DATABASE_URL=None,
                              RATELIMIT_STORAGE_URI=None, STRIPE_SECRET_KEY=None, STRIPE_WEBHOOK_SECRET=None,
                              BASE_URL=None), "routes")
    assert development.returncode == 0, development.stderr[-2000:]


def test_gunicorn_refuses_an_unsafe_configuration_with_the_reason():
    env = _env(SECRET_KEY=None)
    result = subprocess.run([str(GUNICORN), "wsgi:app", "--bind", f"127.0.0.1:{free_port()}", "--workers", "1"],  # nosec B603
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    reasons = [line for line in result.stderr.splitlines() if "Sängplats will not start" in line]
    assert reasons and "Traceback" not in result.stderr, result.stderr[-2000:]


def test_demo_seed_refuses_to_run_in_production():
    result = _flask(_env(), "demo", "seed")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "production" in lines[0], result.stderr[-2000:]


# --- links, hosts and the proxy ----------------------------------------------------------------


def test_a_reset_requested_for_another_host_mails_a_link_on_base_url(app, client, make_user):
    app.config["BASE_URL"] = "https://sangplats.example"
    user = make_user()
    page = client.get("/password/forgot", headers={"Host": "evil.example"})
    from tests.helpers import csrf_from
    client.post("/password/forgot", data={"email": user.email, "csrf_token": csrf_from(page)},
                headers={"Host": "evil.example"})
    body = db.session.scalar(select(OutboxEmail.body_text).where(OutboxEmail.to_address == user.email))
    assert "https://sangplats.example/password/reset/" in body, body
    assert "evil.example" not in body


def test_links_in_api_answers_are_built_from_base_url(app, client, make_listing):
    app.config["BASE_URL"] = "https://sangplats.example"
    listing = make_listing()
    answer = client.get(f"/api/v1/listings/{listing.id}", headers={"Host": "evil.example"}).get_json()
    assert answer["url"] == f"https://sangplats.example/listings/{listing.id}"


def test_requests_for_an_untrusted_host_answer_400(database_url, tmp_path):
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url, "TRUSTED_HOSTS": ["sangplats.se"]})
    client = app.test_client()
    assert client.get("/healthz", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/api/v1/seasons", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/healthz", headers={"Host": "sangplats.se"}).status_code == 200


def test_trusted_hosts_and_proxy_fix_come_from_the_environment(monkeypatch, database_url):
    monkeypatch.setenv("TRUSTED_HOSTS", "sangplats.se, www.sangplats.se")
    monkeypatch.setenv("PROXY_FIX_X_FOR", "1")
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url})
    assert app.config["TRUSTED_HOSTS"] == ["sangplats.se", "www.sangplats.se"]
    assert app.config["PROXY_FIX_X_FOR"] == 1


def test_behind_a_proxy_the_client_address_is_recorded(database_url, make_user):
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url, "PROXY_FIX_X_FOR": 1})
    app.add_url_rule("/_limit_key", "limit_key", lambda: limiter._key_func())
    with app.app_context():
        client = app.test_client()
        user = make_user()
        headers = {"X-Forwarded-For": "203.0.113.9"}
        answer = client.post("/api/v1/tokens", json={"email": user.email, "password": PASSWORD},
                             headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.2"})
        assert answer.status_code in (200, 201), answer.get_data(as_text=True)
        ips = set(db.session.scalars(select(AuditEntry.ip).where(AuditEntry.ip.is_not(None))))
        assert ips == {"203.0.113.9"}
        # The rate limit counts per client, not per proxy: the limiter's key is the forwarded address.
        assert client.get("/_limit_key", headers=headers,
                          environ_base={"REMOTE_ADDR": "10.0.0.2"}).get_data(as_text=True) == "203.0.113.9"
        db.session.remove()
        db.engine.dispose()


# --- Stripe events ------------------------------------------------------------------------------


def _post_raw(client, app, body: bytes, timestamp=None):
    return client.post("/stripe/webhook", data=body,
                       headers=signed_headers(body, app.config["STRIPE_WEBHOOK_SECRET"], timestamp))


@pytest.mark.parametrize("body", [
    json.dumps({"id": "evt_no_data", "object": "event", "type": "payment_intent.succeeded"}).encode(),
    json.dumps({"id": "evt_string_object", "object": "event", "type": "payment_intent.succeeded",
                "data": {"object": "pi_123"}}).encode(),
    json.dumps({"id": "evt_bad_id", "object": "event", "type": "payment_intent.succeeded",
                "data": {"object": {"object": "payment_intent", "id": {"nested": 1}}}}).encode(),
    json.dumps({"id": "evt_no_id", "object": "event", "type": "payment_intent.succeeded",
                "data": {"object": {"object": "payment_intent"}}}).encode(),
    json.dumps({"object": "event", "type": None,
                "data": {"object": {"object": "charge", "payment_intent": 7}}}).encode(),
    json.dumps({"id": "e" * 400, "object": "event", "type": "t" * 300, "data": {"object": []}}).encode(),
], ids=["no_data", "string_object", "bad_id", "no_intent_id", "no_event_id", "oversized"])
def test_a_signed_event_the_app_cannot_use_answers_2xx_and_is_recorded(app, client, body):
    response = _post_raw(client, app, body)
    assert 200 <= response.status_code < 300, response.get_data(as_text=True)[:500]
    rows = db.session.execute(select(StripeEvent.event_id, StripeEvent.status)).all()
    assert len(rows) == 1 and rows[0].status == "failed", rows
    # Delivered again, it is still acknowledged and still one record.
    assert 200 <= _post_raw(client, app, body).status_code < 300
    assert db.session.scalar(select(func.count(StripeEvent.id))) == 1


def test_a_signature_dated_in_the_future_is_refused(app, client):
    body = event_payload("customer.created", {"id": "cus_x", "object": "customer"})
    future = _post_raw(client, app, body, timestamp=int(time.time()) + 301)
    assert future.status_code == 400 and future.get_json()["code"] == "invalid_signature"
    assert _post_raw(client, app, body, timestamp=int(time.time()) + 60).status_code == 200


# --- append-only tables ------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["contracts", "audit_entries"])
def test_truncate_of_an_append_only_table_is_refused(app, backend, table):
    if backend != "postgresql":
        pytest.skip("not applicable: SQLite has no TRUNCATE statement "
                    "(its append-only row triggers are tested elsewhere)")
    with pytest.raises(Exception, match="append-only"):
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {table} CASCADE"))


def test_no_test_clean_up_truncates():
    for folder in ("tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == Path(__file__).name:
                continue
            assert not re.search(r"[\"']\s*TRUNCATE\s", path.read_text(), re.IGNORECASE), path


# --- the database unreachable ------------------------------------------------------------------


@pytest.fixture
def down_app(tmp_path):
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": PG_DOWN.replace("postgresql://", "postgresql+psycopg://"),
                                 "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 2}},
                                 "MAIL_OUTBOX_DIR": str(tmp_path / "mail")})
    yield app


def test_an_unreachable_database_answers_503_unavailable(down_app):
    client = down_app.test_client()
    for path in ("/api/v1/seasons",
                 f"/api/v1/availability?year={YEAR}&check_in={YEAR}-06-20&check_out={YEAR}-06-21&beds=1",
                 "/api/v1/bookings/1"):
        response = client.get(path, headers={"Authorization": "Bearer tok_x"} if "bookings" in path else {})
        assert response.status_code == 503, (path, response.get_data(as_text=True)[:300])
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["code"] == "unavailable"
    posted = client.post("/api/v1/tokens", json={"email": "a@example.se", "password": "x" * 12})
    assert posted.status_code == 503 and posted.get_json()["code"] == "unavailable"
    page = client.get("/")
    assert page.status_code == 503 and page.mimetype == "text/html"
    health = client.get("/healthz")
    assert health.status_code == 503 and health.get_json()["db"] == "error"


@pytest.mark.parametrize("command", ["holds expire", "worker"])
def test_an_unreachable_database_gives_the_cli_one_line_and_exit_1(command):
    result = _flask(_env(APP_ENV="testing", SECRET_KEY=None, DATABASE_URL=PG_DOWN), *command.split())
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]


# --- no-store ----------------------------------------------------------------------------------


def test_private_answers_are_not_stored(app, client, login, make_user, make_listing):
    listing = make_listing()
    public = client.get(f"/listings/{listing.id}")
    assert "no-store" not in public.headers.get("Cache-Control", "")
    from app.models import HostProfile
    token = db.session.scalar(select(HostProfile.calendar_token).where(HostProfile.user_id == listing.host_id))
    feed = client.get(f"/calendar/host/{token}.ics")
    assert feed.status_code == 200 and feed.headers.get("Cache-Control") == "no-store"
    user = make_user()
    login(user)
    page = client.get("/")
    assert page.headers.get("Cache-Control") == "no-store"
