"""Running it (issue 14, first half): the settings object, SMTP with login, STARTTLS and TLS, mail that stays
queued without MAIL_SERVER, a message one worker is sending that another must leave alone, /healthz with the
worker's heartbeat and the outbox in one statement, the jobs' advisory lock, localstripe on loopback only."""
from __future__ import annotations

import re
import smtplib
import ssl
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, text

from app import UnsafeConfiguration, create_app
from app.extensions import db
from app.models import OutboxEmail, WorkerHeartbeat
from app.services import health, jobs, mail
from app.services.base import unit_of_work
from config import MAIL_SECURITY_MODES, Settings, SettingsError, mail_port, read_settings, unsafe_configuration
from tests.helpers import NOW, ROOT
from tests.smtp_server import SmtpServer, self_signed_certificate

LOGIN = ("sangplats", "ratt-losenord")

# --- settings -----------------------------------------------------------------------------------------------------


def test_every_setting_of_the_contract_is_read_and_listed_in_env_example():
    contract = {"APP_ENV", "DATABASE_URL", "SECRET_KEY", "BASE_URL", "TRUSTED_HOSTS", "PROXY_FIX_X_FOR",
                "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_API_BASE", "STRIPE_JS_URL",
                "STRIPE_WEBHOOK_SECRET", "RATELIMIT_STORAGE_URI", "MAIL_SERVER", "MAIL_PORT", "MAIL_USERNAME",
                "MAIL_PASSWORD", "MAIL_SECURITY", "MAIL_FROM"}
    assert contract <= set(Settings.names())
    lines = (ROOT / ".env.example").read_text().splitlines()
    listed = {match.group(1): i for i, line in enumerate(lines) if (match := re.match(r"([A-Z_]+)=", line))}
    assert sorted(listed) == sorted(Settings.names()), "each setting in .env.example, and nothing else"
    for name, i in listed.items():  # each with its meaning on the line above
        assert lines[i - 1].startswith("# ") and len(lines[i - 1]) > 20, name


def test_settings_are_typed():
    settings = read_settings({
        "MAIL_SERVER": "smtp.example.com", "MAIL_PORT": "2525", "MAIL_SECURITY": "STARTTLS", "MAIL_USERNAME": "u",
        "TRUSTED_HOSTS": "sangplats.se, www.sangplats.se", "PROXY_FIX_X_FOR": "1", "SESSION_COOKIE_SECURE": "no",
        "BASE_URL": "https://sangplats.se/", "WORKER_TICK_SECONDS": "0.5", "MAIL_PASSWORD": "  ", "HSTS": "on"})
    assert (settings.MAIL_PORT, settings.MAIL_SECURITY, settings.PROXY_FIX_X_FOR) == (2525, "starttls", 1)
    assert settings.TRUSTED_HOSTS == ["sangplats.se", "www.sangplats.se"] and settings.BASE_URL == "https://sangplats.se"
    assert settings.SESSION_COOKIE_SECURE is False and settings.HSTS is True and settings.WORKER_TICK_SECONDS == 0.5
    assert settings.MAIL_PASSWORD is None and settings.APP_ENV is None  # empty or unset: the default applies


@pytest.mark.parametrize("name,value,says", [
    ("MAIL_PORT", "smtp", "is not a whole number"),
    ("MAIL_PORT", "70000", "is not between 1 and 65535"),
    ("MAIL_SECURITY", "ssl", "is not one of none, starttls, tls"),
    ("MAIL_FROM", "noreply", "is not an e-mail address"),
    ("BASE_URL", "sangplats.se", "is not an http(s) address without query or fragment"),
    ("PROXY_FIX_X_FOR", "yes", "is not a whole number"),
    ("SESSION_COOKIE_SECURE", "maybe", "is not a yes/no value"),
    ("WORKER_TICK_SECONDS", "0", "is not between 0 (exclusive) and 86400 seconds"),
])
def test_a_value_that_does_not_parse_is_named_in_one_line(name, value, says):
    with pytest.raises(SettingsError) as refused:
        read_settings({name: value})
    message = str(refused.value)
    assert message.startswith(f"{name}={value!r} {says} (") and "\n" not in message, message


def test_a_secret_that_does_not_parse_is_not_shown():
    with pytest.raises(SettingsError) as refused:
        read_settings({"MAIL_PASSWORD": "rätt-lösenord"})
    assert str(refused.value).startswith("MAIL_PASSWORD=(not shown) has characters outside ASCII")
    assert "lösenord" not in str(refused.value)


def test_the_app_refuses_to_start_on_a_setting_that_does_not_parse(monkeypatch, tmp_path):
    monkeypatch.setenv("MAIL_SECURITY", "ssl")
    with pytest.raises(UnsafeConfiguration, match=r"^MAIL_SECURITY='ssl' is not one of none, starttls, tls"):
        create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}"})


def test_the_environment_reaches_the_app(monkeypatch, tmp_path):
    for name, value in {"MAIL_SERVER": "smtp.example.com", "MAIL_SECURITY": "tls", "MAIL_USERNAME": "sangplats",
                        "MAIL_PASSWORD": "hemligt", "MAIL_FROM": "Sängplats <post@sangplats.se>",
                        "WORKER_TICK_SECONDS": "5"}.items():
        monkeypatch.setenv(name, value)
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}"})
    assert (app.config["MAIL_SERVER"], app.config["MAIL_SECURITY"], app.config["MAIL_USERNAME"]) == (
        "smtp.example.com", "tls", "sangplats")
    assert app.config["MAIL_PASSWORD"] == "hemligt" and app.config["MAIL_FROM"] == "Sängplats <post@sangplats.se>"
    assert mail_port(app.config) == 465 and app.config["WORKER_TICK_SECONDS"] == 5.0


def test_each_security_mode_has_its_usual_port():
    assert {mode: mail_port({"MAIL_SECURITY": mode}) for mode in MAIL_SECURITY_MODES} == {
        "none": 25, "starttls": 587, "tls": 465}
    assert mail_port({"MAIL_SECURITY": "tls", "MAIL_PORT": 2465}) == 2465


def test_production_refuses_to_send_the_mail_password_in_clear():
    safe = {"SECRET_KEY": "own-key", "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://x/y",
            "BASE_URL": "https://s.se", "RATELIMIT_STORAGE_URI": "redis://r", "STRIPE_SECRET_KEY": "sk_live_x",
            "STRIPE_WEBHOOK_SECRET": "whsec_own", "MAIL_SERVER": "smtp.example.com",
            "MAIL_PASSWORD": "hemligt", "MAIL_SECURITY": "none"}
    settings = read_settings({"SECRET_KEY": "own-key", "BASE_URL": "https://s.se"})
    assert "MAIL_SECURITY=starttls or tls" in unsafe_configuration("production", safe, settings)
    assert unsafe_configuration("production", {**safe, "MAIL_SECURITY": "starttls"}, settings) is None
    assert unsafe_configuration("production", {**safe, "MAIL_SERVER": "127.0.0.1"}, settings) is None  # a local relay


# --- mail: SMTP login, STARTTLS, TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trust(monkeypatch, certificate):
    """The app trusts the test server's self-signed certificate (and only it), names still checked."""
    monkeypatch.setattr(mail, "tls_context", lambda: ssl.create_default_context(cafile=str(certificate[0])))


def _queue_one(to: str = "gast@example.se") -> OutboxEmail:
    with unit_of_work():
        message = mail.queue_email(to, "Hej", "Text", now=NOW)
    return message


def _configure(app, server: SmtpServer, security: str, login: tuple[str, str] | None = LOGIN) -> None:
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port, MAIL_SECURITY=security,
                      MAIL_USERNAME=login[0] if login else "", MAIL_PASSWORD=login[1] if login else "")


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # aiosmtpd, for the plain login
@pytest.mark.parametrize("security", MAIL_SECURITY_MODES)
def test_mail_is_sent_with_a_login_over_each_security_mode(app, security, certificate, trust):
    server = SmtpServer(login=LOGIN, security=security, certificate=certificate).start()
    try:
        _configure(app, server, security)
        message = _queue_one()
        assert mail.send_pending(now=NOW).sent == 1
        db.session.refresh(message)
        assert message.status == "sent" and server.logins == ["sangplats"]
        assert [m["To"] for m in server.inbox.messages] == ["gast@example.se"]
    finally:
        server.stop()


def test_a_wrong_password_keeps_the_mail_for_a_retry(app, certificate, trust):
    server = SmtpServer(login=LOGIN, security="starttls", certificate=certificate).start()
    try:
        _configure(app, server, "starttls", ("sangplats", "fel"))
        message = _queue_one()
        report = mail.send_pending(now=NOW)
        db.session.refresh(message)
        assert (report.sent, report.failed, report.retrying) == (0, 0, 1)
        assert message.status == "pending" and "535" in message.last_error  # the login's fault, not the message's
        app.config["MAIL_PASSWORD"] = LOGIN[1]
        assert mail.send_pending(now=NOW + mail.RETRY_SCHEDULE[1]).sent == 1
    finally:
        server.stop()


def test_starttls_is_required_when_asked_for_and_the_certificate_checked(app, certificate):
    plain = SmtpServer().start()  # offers no STARTTLS
    try:
        _configure(app, plain, "starttls", None)
        message = _queue_one()
        mail.send_pending(now=NOW)
        db.session.refresh(message)
        assert message.status == "pending" and "STARTTLS" in message.last_error and plain.inbox.messages == []
    finally:
        plain.stop()
    untrusted = SmtpServer(security="starttls", certificate=certificate).start()  # a certificate nobody vouches for
    try:
        _configure(app, untrusted, "starttls", None)
        with pytest.raises(ssl.SSLCertVerificationError):
            mail.connect("127.0.0.1", untrusted.port, "starttls", "", "")
    finally:
        untrusted.stop()


def test_each_security_mode_opens_its_own_kind_of_connection(monkeypatch):
    """The mode selection alone: which class connects and whether STARTTLS and the login are asked for."""
    calls = []

    class Fake:
        def __init__(self, kind, host, port, **kwargs):
            calls.append((kind, host, port, "context" in kwargs))

        def starttls(self, context=None):
            calls.append(("starttls", context is not None))

        def login(self, user, password):
            calls.append(("login", user))

        def close(self):
            pass

    monkeypatch.setattr(smtplib, "SMTP", lambda *a, **k: Fake("SMTP", *a, **k))
    monkeypatch.setattr(smtplib, "SMTP_SSL", lambda *a, **k: Fake("SMTP_SSL", *a, **k))
    mail.connect("mail.example", 25, "none", "", "")
    mail.connect("mail.example", 587, "starttls", "u", "p")
    mail.connect("mail.example", 465, "tls", "u", "p")
    assert calls == [("SMTP", "mail.example", 25, False),
                     ("SMTP", "mail.example", 587, False), ("starttls", True), ("login", "u"),
                     ("SMTP_SSL", "mail.example", 465, True), ("login", "u")]


# --- mail: never marked sent without a server, never sent by two workers ------------------------------------------


def test_without_mail_server_outside_development_mail_stays_queued(app, client, runner):
    app.config.update(APP_ENV="production", MAIL_SERVER="")
    message = _queue_one()
    result = runner.invoke(args=["mail", "send"])
    assert result.exit_code == 1 and "not configured (MAIL_SERVER is unset): 1 message(s) stay queued" in result.output
    db.session.refresh(message)
    assert (message.status, message.attempts, message.sent_at) == ("pending", 0, None)
    assert not list(Path(app.config["MAIL_OUTBOX_DIR"]).glob("*.eml"))
    health_now = client.get("/healthz").get_json()
    assert health_now["mail"] == "not_configured" and health_now["outbox"] == 1
    assert jobs.PERIODIC[[j.name for j in jobs.PERIODIC].index("send_mail")].run_once().startswith("not configured")


def test_a_message_another_worker_is_sending_is_left_alone(app):
    server = SmtpServer().start()
    try:
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port)
        message = _queue_one()
        [item] = mail._due(NOW, 10)
        assert mail._claim(item, NOW)  # worker A has it and is sending it (its record not yet written)
        # Worker B, two minutes on: by the retry schedule attempt 2 is due, but A is still on attempt 1.
        assert mail.send_pending(now=NOW + timedelta(minutes=2)).sent == 0
        assert server.inbox.messages == []
        # A dies before recording: once its claim lapses, the message goes out (at least once, never lost).
        assert mail.send_pending(now=NOW + mail.CLAIM_LEASE + timedelta(seconds=1)).sent == 1
        db.session.refresh(message)
        assert (message.status, message.attempts, message.claimed_until) == ("sent", 2, None)
        assert len(server.inbox.messages) == 1
    finally:
        server.stop()


# --- /healthz: the worker's heartbeat and the outbox ----------------------------------------------------------------


def test_the_worker_is_late_after_two_minutes_without_a_heartbeat(app):
    assert health.report(now=NOW)["worker"] == "late"  # no worker has ever run
    health.beat("host-a:1", now=NOW)
    assert health.report(now=NOW + timedelta(seconds=119))["worker"] == "ok"
    assert health.report(now=NOW + timedelta(seconds=121))["worker"] == "late"
    health.beat("host-b:2", now=NOW + timedelta(minutes=3))  # a second worker keeps it ok
    health.beat("host-a:1", now=NOW + timedelta(minutes=3, seconds=10))  # renewing its row, not adding one
    assert db.session.scalar(select(func.count(WorkerHeartbeat.name))) == 2
    health.stopped("host-a:1")  # stops cleanly: its row goes
    assert health.report(now=NOW + timedelta(minutes=4))["worker"] == "ok"  # host-b still beats
    health.stopped("host-b:2")
    assert health.report(now=NOW + timedelta(minutes=4))["worker"] == "late"  # none left: late at once


def test_rows_of_workers_that_were_killed_are_forgotten_after_a_day(app):
    health.beat("killed:1", now=NOW)  # never stopped: its row stays, going stale
    health.beat("new:2", now=NOW + timedelta(hours=23))
    assert sorted(db.session.scalars(select(WorkerHeartbeat.name))) == ["killed:1", "new:2"]
    health.beat("newer:3", now=NOW + timedelta(days=1, minutes=1))
    assert sorted(db.session.scalars(select(WorkerHeartbeat.name))) == ["new:2", "newer:3"]


def test_healthz_reports_worker_and_outbox_in_one_statement(app, client):
    for _ in range(3):
        _queue_one()
    statements = []
    listener = lambda _conn, _cursor, sql, *_args: statements.append(sql)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        answer = client.get("/healthz")
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ok", "db": "ok", "worker": "late", "outbox": 3, "mail": "files"}
    assert len([s for s in statements if s.strip().upper().startswith("SELECT")]) == 1, statements
    health.beat("here:1")
    assert client.get("/healthz").get_json()["worker"] == "ok"


# --- the jobs' advisory lock ----------------------------------------------------------------------------------------


def test_an_exclusive_job_is_skipped_while_another_process_runs_it(app, backend):
    payouts = next(job for job in jobs.PERIODIC if job.name == "schedule_payouts")
    assert payouts.exclusive and payouts.run_once() == ""  # nothing to schedule, but it ran
    if backend != "postgresql":
        assert jobs.exclusively("schedule_payouts", lambda: 7) == (True, 7)  # SQLite serialises its writers
        return
    with db.engine.connect() as other:  # another worker, holding the job's lock
        assert other.scalar(text("SELECT pg_try_advisory_lock(hashtext('sangplats.job.schedule_payouts'))"))
        assert payouts.run_once() == "skipped: another worker is running it"
        assert jobs.exclusively("schedule_payouts", lambda: 7) == (False, None)
        assert jobs.reconcile().skipped == ("schedule_payouts",)
        other.execute(text("SELECT pg_advisory_unlock(hashtext('sangplats.job.schedule_payouts'))"))
        other.commit()
    assert jobs.exclusively("schedule_payouts", lambda: 7) == (True, 7)


# --- localstripe on loopback only -----------------------------------------------------------------------------------


def test_localstripe_listens_on_127_0_0_1_only():
    from tools.localstripe import free_port, start
    port = free_port()
    process = start(port)
    try:
        listening = [line.split()[1] for path in ("/proc/net/tcp", "/proc/net/tcp6")
                     for line in Path(path).read_text().splitlines()[1:]
                     if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"]  # 0A: LISTEN
        assert listening == [f"0100007F:{port:04X}"]
    finally:
        process.terminate()
        process.wait(timeout=30)
