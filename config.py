"""Configuration: one typed settings object read from the environment, and the Flask defaults per environment.

`read_settings()` is the only place that reads the environment. Each `Settings` field is one environment
variable of the same name (the names `../shared/API.md` and `.env.example` use), parsed and checked when the
app is created: a value that does not parse stops the start with one line naming the variable. A field is None
when the variable is unset or empty; the environment's class below then gives the default. The classes hold
constants only and are never read from the environment themselves.
"""
from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent


def normalise_database_url(url: str) -> str:
    """Pick the psycopg 3 driver for a plain postgresql:// URL."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


DEV_SECRET_KEY = "dev-only-secret-change-me"
DEV_WEBHOOK_SECRET = "whsec_sangplats_dev"
DEV_DATABASE_URL = f"sqlite:///{BASE_DIR / 'instance' / 'sangplats.db'}"
DEV_BASE_URL = "http://127.0.0.1:5000"
SAFE_TO_TRY_ENVS = ("development", "testing")  # the only environments with public defaults
MAIL_SECURITY_MODES = ("none", "starttls", "tls")
MAIL_DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}


class SettingsError(ValueError):
    """An environment variable's value cannot be used; the message is one line that names it."""


# --- parsers: the text of a variable → its typed value, or ValueError with the reason ----------------------------


def _text(value: str) -> str:
    return value


def _whole(minimum: int, maximum: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ValueError("is not a whole number") from None
        if not minimum <= number <= maximum:
            raise ValueError(f"is not between {minimum} and {maximum}")
        return number
    return parse


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("is not a number of seconds") from None
    if not 0 < number <= 86400:
        raise ValueError("is not between 0 (exclusive) and 86400 seconds")
    return number


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("is not a yes/no value (1, true, yes, on or 0, false, no, off)")


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value.lower() not in choices:
            raise ValueError(f"is not one of {', '.join(choices)}")
        return value.lower()
    return parse


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError("is not an http(s) address without query or fragment")
    return value.rstrip("/")


def _ascii(value: str) -> str:
    if not value.isascii():
        raise ValueError("has characters outside ASCII, which an SMTP login (Python's smtplib) cannot send")
    return value


def _address(value: str) -> str:
    name, address = parseaddr(value)
    if "@" not in address or "\n" in value or "\r" in value:
        raise ValueError("is not an e-mail address")
    return value


LOG_LEVELS = ("debug", "info", "warning", "error")


def _stripe_timeout(value: str) -> float:
    seconds = _seconds(value)
    if seconds > 14:
        raise ValueError("is more than 14 seconds (two tries and the pause must end inside gunicorn's 30 s)")
    return seconds


def _token(value: str) -> str:
    if len(value) < 16 or any(c.isspace() for c in value):
        raise ValueError("is shorter than 16 characters or has spaces")
    return value


def setting(meaning: str, parse: Callable[[str], Any] = _text, *, secret: bool = False) -> Any:
    """A field of Settings: the variable's meaning (for .env.example and errors), how to parse it, and whether
    its value is a secret (never shown in an error)."""
    return field(default=None, metadata={"meaning": meaning, "parse": parse, "secret": secret})


@dataclass(frozen=True)
class Settings:
    """Every environment variable Sängplats reads, typed. None: unset or empty (the environment's default)."""

    APP_ENV: str | None = setting("development, testing or production (unset means production); only development "
                                  "and testing may start with the public defaults")
    SECRET_KEY: str | None = setting("signs sessions and CSRF tokens; required outside development and testing",
                                     secret=True)
    DATABASE_URL: str | None = setting("postgresql://user:password@host:5432/sangplats (default in development: "
                                       "an SQLite file under instance/)", secret=True)
    BASE_URL: str | None = setting("the address every link in mail, answers and calendars starts with, "
                                   "e.g. https://sangplats.se", _http_url)
    TRUSTED_HOSTS: list[str] | None = setting("comma-separated host names; a request for any other host answers 400",
                                              _list)
    PROXY_FIX_X_FOR: int | None = setting("the number of trusted proxies in front of the app (X-Forwarded-For), "
                                          "0 without one", _whole(0, 10))
    SESSION_COOKIE_SECURE: bool | None = setting("cookies only over HTTPS (default: yes, no in development)", _bool)
    HSTS: bool | None = setting("send Strict-Transport-Security (default: yes, no in development)", _bool)
    UPLOAD_DIR: str | None = setting("where vetting documents were kept before they moved into the database: read "
                                     "once, by the migration that moves them (default: instance/uploads)")
    RATELIMIT_STORAGE_URI: str | None = setting("where rate limits are counted: redis://host:6379 in production "
                                                "(default memory://, one process only)")
    STRIPE_SECRET_KEY: str | None = setting("Stripe's secret key (sk_live_... in production)", secret=True)
    STRIPE_PUBLISHABLE_KEY: str | None = setting("Stripe's publishable key (pk_live_... in production)")
    STRIPE_WEBHOOK_SECRET: str | None = setting("the signing secret of the webhook at POST /stripe/webhook",
                                                secret=True)
    STRIPE_API_BASE: str | None = setting("localstripe's address in development; unset: Stripe's own", _http_url)
    STRIPE_JS_URL: str | None = setting("where the payment page loads Stripe.js (default "
                                        "https://js.stripe.com/v3/)", _http_url)
    MAIL_SERVER: str | None = setting("SMTP server host; unset: outside development mail stays queued (and "
                                      "/healthz says so), in development it is written to MAIL_OUTBOX_DIR")
    MAIL_PORT: int | None = setting("SMTP port (default 25, 587 with starttls, 465 with tls)", _whole(1, 65535))
    MAIL_USERNAME: str | None = setting("SMTP login user (unset: no login)", _ascii)
    MAIL_PASSWORD: str | None = setting("SMTP login password", _ascii, secret=True)
    MAIL_SECURITY: str | None = setting("none, starttls or tls (TLS from the first byte); default none",
                                        _choice(*MAIL_SECURITY_MODES))
    MAIL_FROM: str | None = setting("the sender, e.g. 'Sängplats <noreply@sangplats.se>'", _address)
    MAIL_OUTBOX_DIR: str | None = setting("development only: folder for .eml files when MAIL_SERVER is unset")
    PLATFORM_NAME: str | None = setting("the platform's legal name, the invoices' payee (payment agent of the hosts)")
    PLATFORM_ORGANISATION_NUMBER: str | None = setting("the platform's Swedish organisation number NNNNNN-NNNN, on "
                                                       "every invoice and e-invoice")
    PLATFORM_BANKGIRO: str | None = setting("the bankgiro invoices are paid to (NNNN-NNNN); BgMax files are for it")
    WORKER_TICK_SECONDS: float | None = setting("how often the worker runs its frequent jobs (lapsed holds, "
                                                "reminders, the outbox) and beats its heartbeat; default 15",
                                                _seconds)
    WORKER_STRIPE_SECONDS: float | None = setting("how often the worker runs its Stripe and ledger jobs "
                                                  "(reconciliation, failed events, refunds, payouts); default 300",
                                                  _seconds)
    STRIPE_TIMEOUT_SECONDS: float | None = setting("seconds a Stripe call may take per try (one retry); default 10, at "
                                                   "most 14 so that both tries end inside gunicorn's 30 s",
                                                   _stripe_timeout)
    LOG_LEVEL: str | None = setting("the lowest level that reaches the log (JSON lines on stderr): debug, info, "
                                    "warning or error; default info", _choice(*LOG_LEVELS))
    METRICS_TOKEN: str | None = setting("the bearer token of GET /metrics (Authorization: Bearer <token>), at "
                                        "least 16 characters; unset: /metrics answers 404", _token, secret=True)
    SENTRY_DSN: str | None = setting("Sentry's DSN: unhandled errors and ERROR log lines are reported there (no "
                                     "personal data); unset: nothing is loaded or sent", _http_url, secret=True)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def meaning(cls, name: str) -> str:
        return next(f.metadata["meaning"] for f in fields(cls) if f.name == name)

    def given(self) -> dict[str, Any]:
        """The settings the environment sets (not None)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def read_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check every setting; SettingsError (one line, naming the variable) for the first bad one."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = (environ.get(f.name) or "").strip()
        if not raw:
            continue
        try:
            values[f.name] = f.metadata["parse"](raw)
        except ValueError as error:
            shown = "(not shown)" if f.metadata["secret"] else repr(raw[:80])
            raise SettingsError(f"{f.name}={shown} {error} ({f.metadata['meaning']}).") from None
    return Settings(**values)


class Config:
    """Defaults and constants every environment shares (production's values)."""

    SECRET_KEY = DEV_SECRET_KEY  # refused outside development and testing (unsafe_configuration)
    SQLALCHEMY_DATABASE_URI = DEV_DATABASE_URL
    # Every external link (mail, answers, calendars) starts with BASE_URL, never with a request's Host.
    BASE_URL = DEV_BASE_URL
    # Flask answers 400 to a request for any other host (None: any host).
    TRUSTED_HOSTS: list[str] | None = None
    # The number of trusted proxies in front of the app (X-Forwarded-For), 0 without one.
    PROXY_FIX_X_FOR = 0
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    MAX_CONTENT_LENGTH = 6 * 1024 * 1024
    UPLOAD_DIR = str(BASE_DIR / "instance" / "uploads")

    STRIPE_SECRET_KEY = "sk_test_sangplats"
    STRIPE_PUBLISHABLE_KEY = "pk_test_sangplats"
    STRIPE_API_BASE: str | None = None
    STRIPE_JS_URL = "https://js.stripe.com/v3/"
    STRIPE_WEBHOOK_SECRET = DEV_WEBHOOK_SECRET

    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    # Explicit, because Flask-Limiter otherwise inherits the last app's setting in the same process.
    RATELIMIT_ENABLED = True
    # A moving window: no double budget across a minute boundary (and tests do not depend on the clock).
    RATELIMIT_STRATEGY = "moving-window"

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    REMEMBER_COOKIE_HTTPONLY = True
    WTF_CSRF_TIME_LIMIT = None
    HSTS = True

    MAIL_SERVER = ""
    MAIL_PORT: int | None = None  # None: the port of MAIL_SECURITY (25, 587 or 465)
    MAIL_USERNAME = ""
    MAIL_PASSWORD = ""
    MAIL_SECURITY = "none"
    MAIL_FROM = "Sängplats <noreply@sangplats.se>"
    MAIL_OUTBOX_DIR = str(BASE_DIR / "instance" / "mail")
    # The platform collects invoice money as the hosts' payment agent: its name, organisation number and bankgiro
    # are the invoices' payee (PDF and Peppol e-invoice); BgMax files from Bankgirot are for this bankgiro.
    PLATFORM_NAME = "Sängplats AB"
    PLATFORM_ORGANISATION_NUMBER = "559999-9991"
    PLATFORM_BANKGIRO = "5050-1055"

    WORKER_TICK_SECONDS = 15.0
    WORKER_STRIPE_SECONDS = 300.0

    # Operations: logs, metrics, error reporting, Stripe's time budget. PROMETHEUS_MULTIPROC_DIR is read by
    # prometheus-client itself (app/metrics.py), not here.
    LOG_LEVEL = "INFO"
    METRICS_TOKEN = ""  # unset: GET /metrics answers 404
    SENTRY_DSN = ""  # unset: no error reporting (nothing is loaded or sent)
    STRIPE_TIMEOUT_SECONDS = 10.0  # per try; one retry (app/services/stripe_gateway.py)
    # Redis (rate limits) that does not answer: the request gets 503 within seconds instead of hanging.
    RATELIMIT_REDIS_TIMEOUT_SECONDS = 2

    # argon2id cost: None is the library's recommended parameters (production and development).
    PASSWORD_HASH_COST: dict | None = None

    BABEL_DEFAULT_LOCALE = "sv"
    BABEL_DEFAULT_TIMEZONE = "Europe/Stockholm"
    LANGUAGES = ("sv", "en")

    # Settings this environment ignores even when the environment sets them.
    IGNORED_SETTINGS: tuple[str, ...] = ()


class DevelopmentConfig(Config):
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_SECURE = False
    HSTS = False


class TestingConfig(DevelopmentConfig):
    TESTING = True
    WTF_CSRF_ENABLED = True
    BASE_URL = "http://localhost"
    # The tests count their own limits in memory, whatever the machine's environment says.
    IGNORED_SETTINGS = ("RATELIMIT_STORAGE_URI",)
    # The cheapest argon2id (microseconds instead of ~0.2 s of CPU per hash and per sign-in): the suite hashes
    # hundreds of passwords. Only this class sets it; no environment variable can.
    PASSWORD_HASH_COST = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


class ProductionConfig(Config):
    pass


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def flask_settings(settings: Settings, config_class: type[Config]) -> dict[str, Any]:
    """The Flask configuration the environment sets, under Flask's names (applied over the class's defaults)."""
    given = {name: value for name, value in settings.given().items()
             if name not in config_class.IGNORED_SETTINGS and name != "APP_ENV"}
    if "DATABASE_URL" in given:
        given["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(given.pop("DATABASE_URL"))
    if "SESSION_COOKIE_SECURE" in given:
        given["REMEMBER_COOKIE_SECURE"] = given["SESSION_COOKIE_SECURE"]
    return given


def app_env(config_name: str | None = None, settings: Settings | None = None) -> str:
    """The environment: APP_ENV unset means production."""
    return config_name or (settings.APP_ENV if settings else os.environ.get("APP_ENV")) or "production"


def mail_port(config: Mapping[str, Any]) -> int:
    """MAIL_PORT, or the usual port of MAIL_SECURITY."""
    return int(config.get("MAIL_PORT") or MAIL_DEFAULT_PORTS.get(config.get("MAIL_SECURITY") or "none", 25))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def unsafe_configuration(env: str, config: Mapping[str, Any], settings: Settings) -> str | None:
    """Why this configuration must not serve (None when it may). Only development and testing may use the
    public defaults; production also refuses Stripe test keys and the development webhook secret."""
    if env in SAFE_TO_TRY_ENVS:
        return None
    if not settings.SECRET_KEY or config.get("SECRET_KEY") in (None, "", DEV_SECRET_KEY):
        return f"APP_ENV={env} needs its own SECRET_KEY (the public development key signs nothing here)."
    database = config.get("SQLALCHEMY_DATABASE_URI") or ""
    if database.startswith("sqlite"):
        return f"APP_ENV={env} needs a PostgreSQL DATABASE_URL, not SQLite."
    if (config.get("RATELIMIT_STORAGE_URI") or "memory://").startswith("memory://"):
        return f"APP_ENV={env} needs a shared RATELIMIT_STORAGE_URI (e.g. redis://), not memory://."
    if not settings.BASE_URL and config.get("BASE_URL") in (None, "", DEV_BASE_URL):
        return f"APP_ENV={env} needs BASE_URL (the address every link in mail and answers starts with)."
    server = config.get("MAIL_SERVER") or ""
    if server and config.get("MAIL_PASSWORD") and (config.get("MAIL_SECURITY") or "none") == "none" \
            and not _loopback(server):
        return (f"APP_ENV={env} would send MAIL_PASSWORD unencrypted to {server}: "
                "set MAIL_SECURITY=starttls or tls.")
    if env == "production":
        if (config.get("STRIPE_SECRET_KEY") or "").startswith("sk_test_"):
            return "APP_ENV=production needs a live STRIPE_SECRET_KEY, not a test key (sk_test_)."
        if config.get("STRIPE_WEBHOOK_SECRET") in (None, "", DEV_WEBHOOK_SECRET):
            return "APP_ENV=production needs its own STRIPE_WEBHOOK_SECRET, not the development one."
    return None
