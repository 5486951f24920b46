"""What an operator sees (issue 14): request ids, JSON logs, /metrics, error reporting, and a 503 (never a 500) while
Redis or Stripe cannot be reached, with Stripe calls that give up before gunicorn's worker timeout."""
from __future__ import annotations

import json
import logging
import re
import runpy
import socket
import threading
import time
from types import SimpleNamespace

import pytest
import sentry_sdk
from prometheus_client.parser import text_string_to_metric_families

import jsonlog
from app import create_app, metrics, observability
from app.extensions import db
from app.models import OutboxEmail
from app.services import events, stripe_gateway
from app.services.base import unit_of_work
from tests.helpers import PASSWORD, ROOT, api_book, csrf_from
from tests.live_server import free_port

TOKEN = "metrics-token-for-the-tests-0123456789"


def scrape(client, token=TOKEN) -> dict[tuple[str, tuple], float]:
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.status_code
    assert answer.mimetype == "text/plain"
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.get_data(as_text=True)) for sample in family.samples}


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- request ids ------------------------------------------------------------------------------------------------


def test_a_sane_incoming_request_id_is_echoed_and_any_other_is_replaced(client):
    assert client.get("/healthz", headers={"X-Request-ID": "lb-4f2a:77"}).headers["X-Request-ID"] == "lb-4f2a:77"
    for insane in ("x" * 200, "<script>", "a b", "ü-id", "-leading-dash"):
        answer = client.get("/healthz", headers={"X-Request-ID": insane}).headers["X-Request-ID"]
        assert answer != insane and len(answer) == 32 and int(answer, 16) >= 0
    first, second = (client.get("/healthz").headers["X-Request-ID"] for _ in range(2))
    assert first != second


def test_an_error_answer_carries_the_request_id_too(client):
    assert client.get("/no-such-page", headers={"X-Request-ID": "req-404"}).headers["X-Request-ID"] == "req-404"


# --- JSON logs ------------------------------------------------------------------------------------------------------


@pytest.fixture
def info_logs():
    """The root logger at INFO for one test (the tests otherwise log from WARNING)."""
    root = logging.getLogger()
    before = root.level
    jsonlog.configure("INFO")
    yield
    root.setLevel(before)


def test_a_log_line_is_json_with_time_level_request_id_user_and_route(app, client, make_user, login, capsys,
                                                                       info_logs):
    from flask_login import current_user

    def probe():
        logging.getLogger("app.probe").info("probe seen by %s", current_user.email)
        return "ok"

    app.add_url_rule("/_log_probe", "log_probe", probe)
    user = make_user("coordinator")
    login(user)
    capsys.readouterr()
    client.get("/_log_probe", headers={"X-Request-ID": "probe-1"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    line = next(entry for entry in lines if entry.get("logger") == "app.probe")
    assert line["level"] == "INFO" and line["message"] == f"probe seen by {user.email}"
    assert (line["request_id"], line["route"], line["user_id"], line["method"], line["path"]) == (
        "probe-1", "log_probe", user.id, "GET", "/_log_probe")
    assert line["time"].endswith("+00:00") and "T" in line["time"]


def test_outside_a_request_a_log_line_has_no_request_fields(app, capsys, info_logs):
    logging.getLogger("app.job").info("Åtta lapsed holds")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["message"] == "Åtta lapsed holds" and line["level"] == "INFO"  # UTF-8, not \\u escapes
    assert "request_id" not in line and "user_id" not in line


def test_one_json_handler_however_many_apps_are_made(database_url):
    for _ in range(3):
        create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url})
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, jsonlog.JsonStderrHandler)]
    assert len(handlers) == 1


def test_gunicorns_access_line_becomes_json_with_its_parts():
    from gunicorn.glogging import SafeAtoms
    atoms = SafeAtoms({"h": "203.0.113.9", "m": "POST", "U": "/api/v1/bookings", "q": "", "s": "201", "B": 512,
                       "D": 41000, "a": "curl/8", "f": "-", "{x-request-id}o": "abc-1",
                       "{sangplats.user_id}e": "7", "{sangplats.route}e": "api.create_booking"})
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, '%(h)s "%(m)s %(U)s" %(s)s',
                               (atoms,), None)
    line = json.loads(jsonlog.AccessJsonFormatter().format(record))
    assert line["message"] == '203.0.113.9 "POST /api/v1/bookings" 201'
    assert {k: line[k] for k in ("status", "bytes", "duration_us", "request_id", "user_id", "route", "method")} == {
        "status": 201, "bytes": 512, "duration_us": 41000, "request_id": "abc-1", "user_id": 7,
        "route": "api.create_booking", "method": "POST"}
    assert "referer" not in line and "query" not in line


# --- /metrics -------------------------------------------------------------------------------------------------------


def test_metrics_is_not_there_without_a_token_and_refuses_requests_without_the_right_one(app, client):
    assert client.get("/metrics").status_code == 404  # METRICS_TOKEN unset: no such page
    app.config["METRICS_TOKEN"] = TOKEN
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and b"sangplats_http_requests_total" in answer.data
    assert answer.headers["Cache-Control"] == "no-store"


def test_metrics_count_requests_bookings_refusals_the_outbox_and_job_runs(app, client, api_world):
    app.config["METRICS_TOKEN"] = TOKEN
    before = scrape(client)
    world = api_world
    made = api_book(world["coord"], world["delegation"].id, world["bed_ids"][:1])
    assert made.status_code == 201, made.get_json()
    refused = api_book(world["coord"], world["delegation"].id, world["bed_ids"][:1])  # the same bed again
    assert refused.status_code == 409
    code = refused.get_json()["code"]
    metrics.job_ran("expire_holds", ok=True)
    metrics.job_ran("expire_holds", ok=False)
    after = scrape(client)
    assert value(after, "sangplats_bookings_total", payment_method="invoice") - value(
        before, "sangplats_bookings_total", payment_method="invoice") == 1
    assert value(after, "sangplats_refusals_total", code=code) - value(before, "sangplats_refusals_total",
                                                                       code=code) == 1
    assert value(after, "sangplats_http_requests_total", endpoint="api.create_booking", method="POST",
                 status="201") - value(before, "sangplats_http_requests_total", endpoint="api.create_booking",
                                       method="POST", status="201") == 1
    for outcome in ("ok", "failed"):
        assert value(after, "sangplats_job_runs_total", job="expire_holds", outcome=outcome) - value(
            before, "sangplats_job_runs_total", job="expire_holds", outcome=outcome) == 1
    pending = db.session.scalar(db.select(db.func.count(OutboxEmail.id)).where(OutboxEmail.status == "pending"))
    assert pending > 0 and value(after, "sangplats_outbox_messages", status="pending") == pending
    assert value(after, "sangplats_outbox_messages", status="failed") == 0


def test_a_refusal_a_page_shows_is_counted(app, client):
    """Pages catch a service's refusal and show it with flash_error, which counts it (the API's error handler counts
    its own)."""
    from app.services.errors import Conflict
    from app.web.common import flash_error
    app.config["METRICS_TOKEN"] = TOKEN
    before = value(scrape(client), "sangplats_refusals_total", code="state_changed")
    with app.test_request_context("/"):
        flash_error(Conflict("Ändrat under tiden.", code="state_changed"))
    assert value(scrape(client), "sangplats_refusals_total", code="state_changed") - before == 1


def test_a_booking_is_counted_only_when_its_transaction_commits(app):
    def count():
        return metrics.BOOKINGS.labels("card")._value.get()

    assert observability._booking_created in events._handlers[events.BOOKING_CREATED]
    start = count()
    with pytest.raises(RuntimeError), unit_of_work():
        observability._booking_created(booking=SimpleNamespace(payment_method="card"), now=None)
        raise RuntimeError("rolled back")
    assert count() == start
    with unit_of_work():
        observability._booking_created(booking=SimpleNamespace(payment_method="card"), now=None)
    assert count() == start + 1


# --- error reporting ------------------------------------------------------------------------------------------------


def test_without_sentry_dsn_error_reporting_never_starts(database_url, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("sentry_sdk.init called without SENTRY_DSN")

    monkeypatch.setattr(sentry_sdk, "init", refuse)
    monkeypatch.setattr(observability, "_sentry_started", False)
    create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url, "SENTRY_DSN": ""})
    assert not sentry_sdk.get_client().is_active()


def test_with_sentry_dsn_error_reporting_starts_once_without_personal_data(database_url, monkeypatch):
    calls = []
    monkeypatch.setattr(sentry_sdk, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(observability, "_sentry_started", False)
    dsn = "https://public@sentry.example/1"
    for _ in range(2):
        create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url, "SENTRY_DSN": dsn})
    assert len(calls) == 1
    assert calls[0]["dsn"] == dsn and calls[0]["send_default_pii"] is False and calls[0]["environment"] == "testing"


# --- Redis down -----------------------------------------------------------------------------------------------------


@pytest.fixture
def redis_down(app, database_url, tmp_path):
    """The app with its rate limits in a Redis that is not there (a closed port). Made after `app`: the limiter is one
    object, and the last app made sets its storage."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url,
                                 "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{free_port()}/0",
                                 "MAIL_OUTBOX_DIR": str(tmp_path / "mail")})
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_redis_down_makes_a_token_request_a_503_not_a_500(redis_down, make_user):
    user = make_user("coordinator")
    started = time.monotonic()
    answer = redis_down.test_client().post("/api/v1/tokens", json={"email": user.email, "password": PASSWORD})
    assert time.monotonic() - started < 10
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert answer.mimetype == "application/problem+json"
    assert answer.get_json()["code"] == "service_unavailable" and answer.headers["Retry-After"] == "30"
    assert len(answer.headers["X-Request-ID"]) == 32


def test_redis_down_shows_a_friendly_page_on_the_sign_in_form(redis_down, make_user):
    user = make_user("coordinator")
    browser = redis_down.test_client()
    page = browser.get("/login")  # only POSTs are limited
    assert page.status_code == 200
    answer = browser.post("/login", data={"csrf_token": csrf_from(page), "email": user.email, "password": PASSWORD})
    assert answer.status_code == 503 and answer.mimetype == "text/html"
    assert "svarar inte just nu" in answer.get_data(as_text=True)


def test_a_redis_url_gets_short_timeouts(redis_down):
    assert redis_down.config["RATELIMIT_STORAGE_OPTIONS"] == {"socket_connect_timeout": 2, "socket_timeout": 2}


# --- Stripe down ----------------------------------------------------------------------------------------------------


class SilentServer:
    """Accepts connections and never answers (a Stripe that hangs)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def test_a_stripe_that_hangs_is_given_up_after_two_short_tries(app):
    server = SilentServer()
    try:
        app.config.update(STRIPE_API_BASE=f"http://127.0.0.1:{server.port}", STRIPE_TIMEOUT_SECONDS=0.5)
        started = time.monotonic()
        with pytest.raises(stripe_gateway.StripeError) as raised:
            stripe_gateway.fetch_intent("pi_hanging")
        took = time.monotonic() - started
        assert stripe_gateway.unreachable(raised.value)
        assert 1.0 <= took < stripe_gateway.worst_case_seconds(0.5) + 2, took
        assert len(server.accepted) == 2  # the first try and the one retry
    finally:
        server.close()
        app.config["STRIPE_TIMEOUT_SECONDS"] = 10


def test_stripe_gives_up_before_gunicorn_kills_the_worker(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # the file sets it when unset; undone after the test
    settings = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    from config import Config
    assert stripe_gateway.worst_case_seconds(Config.STRIPE_TIMEOUT_SECONDS) < settings["timeout"]


def test_stripe_unreachable_where_nothing_caught_it_is_a_503_not_a_500(app, client):
    app.config["STRIPE_API_BASE"] = f"http://127.0.0.1:{free_port()}"

    def look_up():
        stripe_gateway.fetch_intent("pi_anything")
        return "unreachable"

    app.add_url_rule("/api/v1/_stripe_probe", "stripe_probe", look_up)
    app.add_url_rule("/_stripe_probe", "stripe_page_probe", look_up)
    answer = client.get("/api/v1/_stripe_probe")
    assert answer.status_code == 503 and answer.get_json()["code"] == "service_unavailable"
    page = client.get("/_stripe_probe")
    assert page.status_code == 503 and "svarar inte just nu" in page.get_data(as_text=True)


def test_the_worker_counts_each_run_of_its_jobs(app):
    from app.cli.worker import Worker
    from app.services.jobs import PeriodicJob

    def broken(_now):
        raise RuntimeError("a round that fails")

    worker = Worker(app)
    fine, failing = (PeriodicJob("probe_fine", lambda _now: "", "WORKER_TICK_SECONDS"),
                     PeriodicJob("probe_failing", broken, "WORKER_TICK_SECONDS"))

    def count(job, outcome):
        return metrics.JOB_RUNS.labels(job, outcome)._value.get()

    before = (count("probe_fine", "ok"), count("probe_failing", "failed"))
    worker.run_job(fine)
    worker.run_job(failing)  # logged, counted, and the worker goes on
    assert (count("probe_fine", "ok"), count("probe_failing", "failed")) == (before[0] + 1, before[1] + 1)


@pytest.mark.parametrize("name,value,says", [
    ("STRIPE_TIMEOUT_SECONDS", "20", "more than 14 seconds"),
    ("STRIPE_TIMEOUT_SECONDS", "soon", "is not a number of seconds"),
    ("LOG_LEVEL", "loud", "is not one of debug, info, warning, error"),
    ("METRICS_TOKEN", "tiny-token", "shorter than 16 characters"),
    ("SENTRY_DSN", "key@sentry.example/1", "is not an http(s) address"),
])
def test_an_operations_setting_that_does_not_parse_stops_the_start(name, value, says):
    from config import SettingsError, read_settings
    with pytest.raises(SettingsError, match=re.escape(says)) as refused:
        read_settings({name: value})
    if name in ("METRICS_TOKEN", "SENTRY_DSN"):
        assert value not in str(refused.value) and "(not shown)" in str(refused.value)  # secrets are never shown


def test_operations_settings_reach_the_app(database_url, monkeypatch):
    monkeypatch.setenv("STRIPE_TIMEOUT_SECONDS", "4.5")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    configured = create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url})
    assert (configured.config["STRIPE_TIMEOUT_SECONDS"], configured.config["LOG_LEVEL"],
            configured.config["METRICS_TOKEN"]) == (4.5, "warning", TOKEN)
    assert configured.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_the_log_lines_user_id_never_queries_the_database(app, make_user):
    """A log line written while the request's transaction waits on a row lock must not load an expired user: the
    load went through another connection behind that lock and hung a gunicorn worker until it was killed (the
    order race on PostgreSQL: 'Worker was sent SIGKILL', a 60 s read timeout). The id comes from the identity."""
    from flask import g
    from sqlalchemy import event

    user = make_user("coordinator")
    user_id = user.id
    db.session.expire(user)
    seen: list[str] = []

    def before(conn, cursor, statement, *args):
        seen.append(statement)

    with app.test_request_context("/api/v1/me"):
        g.api_user = user
        event.listen(db.engine, "before_cursor_execute", before)
        try:
            assert jsonlog.current_user_id() == user_id
        finally:
            event.remove(db.engine, "before_cursor_execute", before)
    assert seen == []
