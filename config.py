"""Configuration classes, read from the environment."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent


def normalise_database_url(url: str) -> str:
    """Pick the psycopg 3 driver for a plain postgresql:// URL."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEV_SECRET_KEY = "dev-only-secret-change-me"
DEV_WEBHOOK_SECRET = "whsec_sangplats_dev"
DEV_DATABASE_URL = f"sqlite:///{BASE_DIR / 'instance' / 'sangplats.db'}"
SAFE_TO_TRY_ENVS = ("development", "testing")  # the only environments with public defaults


def _list(name: str) -> list[str] | None:
    value = os.environ.get(name, "")
    items = [item.strip() for item in value.split(",") if item.strip()]
    return items or None


def _int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


class Config:
    # Development and testing only: outside them an unset SECRET_KEY stops start-up (unsafe_configuration).
    SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
    SQLALCHEMY_DATABASE_URI = normalise_database_url(os.environ.get("DATABASE_URL", DEV_DATABASE_URL))
    # Every external link (mail, answers, calendars) starts with BASE_URL, never with a request's Host.
    BASE_URL = os.environ.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    # Flask answers 400 to a request for any other host (None: any host).
    TRUSTED_HOSTS = _list("TRUSTED_HOSTS")
    # The number of trusted proxies in front of the app (X-Forwarded-For), 0 without one.
    PROXY_FIX_X_FOR = _int("PROXY_FIX_X_FOR", 0)
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    MAX_CONTENT_LENGTH = 6 * 1024 * 1024
    UPLOAD_DIR = os.environ.get("UPLOAD_DIR", str(BASE_DIR / "instance" / "uploads"))

    STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "sk_test_sangplats")
    STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "pk_test_sangplats")
    STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE") or None
    STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL", "https://js.stripe.com/v3/")
    STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", DEV_WEBHOOK_SECRET)

    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_HEADERS_ENABLED = True
    # Explicit, because Flask-Limiter otherwise inherits the last app's setting in the same process.
    RATELIMIT_ENABLED = True
    # A moving window: no double budget across a minute boundary (and tests do not depend on the clock).
    RATELIMIT_STRATEGY = "moving-window"

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", True)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    REMEMBER_COOKIE_HTTPONLY = True
    WTF_CSRF_TIME_LIMIT = None
    HSTS = _bool("HSTS", True)

    MAIL_SERVER = os.environ.get("MAIL_SERVER", "")
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "25"))
    MAIL_FROM = os.environ.get("MAIL_FROM", "Sängplats <noreply@sangplats.se>")
    # The platform collects invoice money as the hosts' payment agent: its name, organisation number and bankgiro
    # are the invoices' payee (PDF and Peppol e-invoice); BgMax files from Bankgirot are for this bankgiro.
    PLATFORM_NAME = os.environ.get("PLATFORM_NAME", "Sängplats AB")
    PLATFORM_ORGANISATION_NUMBER = os.environ.get("PLATFORM_ORGANISATION_NUMBER", "559999-9991")
    PLATFORM_BANKGIRO = os.environ.get("PLATFORM_BANKGIRO", "5050-1055")
    MAIL_OUTBOX_DIR = os.environ.get("MAIL_OUTBOX_DIR", str(BASE_DIR / "instance" / "mail"))

    # argon2id cost: None is the library's recommended parameters (production and development).
    PASSWORD_HASH_COST: dict | None = None

    BABEL_DEFAULT_LOCALE = "sv"
    BABEL_DEFAULT_TIMEZONE = "Europe/Stockholm"
    LANGUAGES = ("sv", "en")


class DevelopmentConfig(Config):
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    HSTS = _bool("HSTS", False)


class TestingConfig(DevelopmentConfig):
    TESTING = True
    WTF_CSRF_ENABLED = True
    RATELIMIT_STORAGE_URI = "memory://"
    BASE_URL = os.environ.get("BASE_URL", "http://localhost").rstrip("/")
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


def deployment_settings() -> dict:
    """The deployment's address settings as the environment gives them now (read at each create_app)."""
    settings: dict = {}
    if os.environ.get("BASE_URL"):
        settings["BASE_URL"] = os.environ["BASE_URL"].rstrip("/")
    if os.environ.get("TRUSTED_HOSTS"):
        settings["TRUSTED_HOSTS"] = _list("TRUSTED_HOSTS")
    if os.environ.get("PROXY_FIX_X_FOR"):
        settings["PROXY_FIX_X_FOR"] = _int("PROXY_FIX_X_FOR", 0)
    return settings


def app_env(config_name: str | None = None) -> str:
    """The environment: APP_ENV unset means production."""
    return config_name or os.environ.get("APP_ENV") or "production"


def unsafe_configuration(env: str, config) -> str | None:
    """Why this configuration must not serve (None when it may). Only development and testing may use the
    public defaults; production also refuses Stripe test keys and the development webhook secret."""
    if env in SAFE_TO_TRY_ENVS:
        return None
    if not os.environ.get("SECRET_KEY") or config.get("SECRET_KEY") in (None, "", DEV_SECRET_KEY):
        return f"APP_ENV={env} needs its own SECRET_KEY (the public development key signs nothing here)."
    database = config.get("SQLALCHEMY_DATABASE_URI") or ""
    if database.startswith("sqlite"):
        return f"APP_ENV={env} needs a PostgreSQL DATABASE_URL, not SQLite."
    if (config.get("RATELIMIT_STORAGE_URI") or "memory://").startswith("memory://"):
        return f"APP_ENV={env} needs a shared RATELIMIT_STORAGE_URI (e.g. redis://), not memory://."
    if not os.environ.get("BASE_URL") and config.get("BASE_URL") in (None, "", "http://127.0.0.1:5000"):
        return f"APP_ENV={env} needs BASE_URL (the address every link in mail and answers starts with)."
    if env == "production":
        if (config.get("STRIPE_SECRET_KEY") or "").startswith("sk_test_"):
            return "APP_ENV=production needs a live STRIPE_SECRET_KEY, not a test key (sk_test_)."
        if config.get("STRIPE_WEBHOOK_SECRET") in (None, "", DEV_WEBHOOK_SECRET):
            return "APP_ENV=production needs its own STRIPE_WEBHOOK_SECRET, not the development one."
    return None
