"""Sängplats: the application factory."""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, abort, g, render_template, request, session
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from app import metrics
from app.extensions import babel, csrf, db, limiter, login_manager, migrate
from app.json_provider import OrjsonProvider
from config import (
    BASE_DIR,
    CONFIGS,
    ProductionConfig,
    SettingsError,
    app_env,
    flask_settings,
    read_settings,
    unsafe_configuration,
)

log = logging.getLogger(__name__)


class UnsafeConfiguration(RuntimeError):
    """The configuration would serve with public defaults or test settings: the app does not start."""


def create_app(config_name: str | None = None, overrides: dict | None = None) -> Flask:
    app = Flask(__name__, template_folder=str(BASE_DIR / "templates"), instance_path=str(BASE_DIR / "instance"))
    app.json = OrjsonProvider(app)
    try:
        settings = read_settings()  # the only read of the environment, checked before anything starts
    except SettingsError as error:
        raise UnsafeConfiguration(str(error)) from None
    env = app_env(config_name, settings)
    config_class = CONFIGS.get(env, ProductionConfig)
    app.config.from_object(config_class)
    app.config["APP_ENV"] = env
    app.config.update(flask_settings(settings, config_class))
    if overrides:
        app.config.update(overrides)
    reason = unsafe_configuration(env, app.config, settings)
    if reason:
        raise UnsafeConfiguration(reason)
    if app.config.get("PROXY_FIX_X_FOR"):
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=int(app.config["PROXY_FIX_X_FOR"]))  # type: ignore[method-assign]  # Flask's documented way to wrap the WSGI app
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    from app import observability
    observability.init_app(app)  # first: request ids and JSON logs for every hook after it

    db.init_app(app)
    with app.app_context():
        from app.db_setup import configure_engine
        configure_engine(db.engine)
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"), render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    if str(app.config["RATELIMIT_STORAGE_URI"]).startswith(("redis://", "rediss://")):
        seconds = app.config.get("RATELIMIT_REDIS_TIMEOUT_SECONDS", 2)
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": seconds,
                                                            "socket_timeout": seconds})
    limiter.init_app(app)
    login_manager.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=lambda: "Europe/Stockholm")
    _setup_login(app)

    from app.web.converters import BoundedIntConverter
    app.url_map.converters["int"] = BoundedIntConverter

    from app import models  # noqa: F401  (the whole schema, for Alembic)
    from app.api import api
    from app.web import register_blueprints
    app.register_blueprint(api)
    csrf.exempt(api)
    register_blueprints(app)

    _register_error_handlers(app)
    _register_nul_guard(app)
    _register_security_headers(app)
    _register_template_helpers(app)

    from app.services import itineraries, notifications, rehousing, waitlist
    notifications.register()  # e-mail and waiting-list reactions to domain events (idempotent)
    notifications.register_itinerary_mail()
    waitlist.register()
    itineraries.register()
    rehousing.register()
    # Imported here, not at the top: importing any `app.*` module runs this package first, and the
    # doors and the CLI import the services, which import `app.extensions` (the factory pattern).
    from app.cli import register_cli
    register_cli(app)

    @app.get("/healthz")
    def healthz():
        """Liveness, the database, the worker's heartbeat and the outbox, in one database round trip."""
        from app.services import health
        try:
            return health.report()
        except Exception:  # any database failure makes the health check fail, never the process
            log.exception("health check failed")
            db.session.rollback()
            return {"status": "error", "db": "error"}, 503

    return app


def select_locale() -> str:
    """The language of this request: Swedish unless someone asked for English.

    Pages: a signed-in user's setting, else ?lang= (remembered in the session), else
    Accept-Language. The API is content negotiation: ?lang= or an Accept-Language header the
    client sends wins, else the token user's setting. Outside a request (CLI): Swedish.
    """
    from flask import has_request_context
    from flask_login import current_user

    from app.i18n import DEFAULT_LOCALE, LOCALES
    if not has_request_context():
        return DEFAULT_LOCALE
    lang = request.args.get("lang")
    if _is_api():
        asked = lang if lang in LOCALES else request.accept_languages.best_match(LOCALES)
        api_user = g.get("api_user")
        return asked or (api_user.locale if api_user is not None else None) or DEFAULT_LOCALE
    if current_user and getattr(current_user, "is_authenticated", False):
        return current_user.locale or DEFAULT_LOCALE
    if lang in LOCALES:
        session["lang"] = lang
        return lang
    if session.get("lang") in LOCALES:
        return session["lang"]
    return request.accept_languages.best_match(LOCALES) or DEFAULT_LOCALE


def _setup_login(app: Flask) -> None:
    from app.models import User

    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(user_id: str):
        try:
            uid, version = (int(part) for part in user_id.split(":"))
        except ValueError:
            return None
        user = db.session.get(User, uid)
        if user is None or user.session_version != version:
            return None
        return user


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _register_error_handlers(app: Flask) -> None:
    from app.http_problems import problem, problem_from_error
    from app.services.errors import DomainError

    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        metrics.refused(error.code)
        if _is_api() or request.path.startswith("/stripe/"):
            return problem_from_error(error)
        return render_template("errors/error.html", status=error.status, message=error.message), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        from flask.globals import request_ctx
        if request_ctx.url_adapter is None:  # a host outside TRUSTED_HOSTS: no page can be built for it
            return app.response_class(_("Felaktig begäran"), status=error.code or 400, mimetype="text/plain")
        title, detail = _http_texts(error)
        if _is_api() or request.path.startswith("/stripe/"):
            codes: dict[int | None, str] = {
                404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 400: "bad_request",
                429: "rate_limited", 401: "unauthorized", 403: "forbidden"}
            code = codes.get(error.code, "http_error")
            if _is_csrf_error(error):
                code = "csrf_failed"
            if error.code == 429:
                metrics.refused(code)
            response = problem(error.code or 500, code, title, detail)
            if error.code == 429:
                retry = getattr(error, "retry_after", None) or _retry_after_header(error)
                response.headers["Retry-After"] = str(retry or 60)
            methods = getattr(error, "valid_methods", None)  # set on MethodNotAllowed only
            if error.code == 405 and methods:
                response.headers["Allow"] = ", ".join(methods)
            return response
        # 403 and 404 pages say it in their heading; the rest explain what to do.
        message = detail if error.code not in (403, 404) else None
        return render_template("errors/error.html", status=error.code, message=message), error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        from app.observability import unreachable_service
        from app.services.errors import database_unreachable
        if database_unreachable(error):
            return _database_unavailable(error)
        service = unreachable_service(error)
        if service:
            return _service_unavailable(service, error)
        log.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        if _is_api():
            return problem(500, "server_error", _("Serverfel"), _("Något gick fel hos oss; felet är loggat."))
        return render_template("errors/error.html", status=500, message=None), 500


def _database_unavailable(error: Exception):
    """While the database cannot be reached: the API's 503 `unavailable`, a friendly page elsewhere."""
    from app.http_problems import problem
    log.error("database unreachable on %s %s: %s", request.method, request.path,
              str(getattr(error, "orig", error)).strip().splitlines()[:1])
    try:
        db.session.rollback()
    except Exception:  # nosec B110 - the connection is gone; nothing to roll back
        pass
    title = _("Tjänsten är inte tillgänglig")
    message = _("Sängplats når inte sin databas just nu. Försök igen om en stund.")
    if _is_api() or request.path.startswith("/stripe/"):
        response = problem(503, "unavailable", title, message)
    else:
        g._login_user = login_manager.anonymous_user()  # the page must not ask the database who is signed in
        from flask import make_response
        response = make_response(render_template("errors/error.html", status=503, message=message), 503)
    response.headers["Retry-After"] = "30"
    return response


def _service_unavailable(service: str, error: Exception):
    """While Redis (rate limits) or Stripe cannot be reached: the API's 503 `service_unavailable`, a page elsewhere."""
    from flask import make_response

    from app.http_problems import problem
    log.error("%s unreachable on %s %s: %s", service, request.method, request.path,
              (str(error).strip().splitlines() or [type(error).__name__])[0])
    try:
        db.session.rollback()
    except Exception:  # nosec B110 - nothing to roll back
        pass
    metrics.refused("service_unavailable")
    title = _("Tjänsten är inte tillgänglig")
    message = _("En tjänst som Sängplats behöver svarar inte just nu. Försök igen om en stund.")
    if _is_api() or request.path.startswith("/stripe/"):
        response = problem(503, "service_unavailable", title, message)
    else:
        response = make_response(render_template("errors/error.html", status=503, message=message), 503)
    response.headers["Retry-After"] = "30"
    return response


def _register_nul_guard(app: Flask) -> None:
    @app.before_request
    def refuse_nul_characters():
        """A NUL character cannot be stored or looked up in PostgreSQL text, so it is refused here for every door at
        once (the API's 422 `invalid`, a page's 400), instead of failing inside a query (a 500)."""
        texts = [request.path, *(v for _key, values in request.args.lists() for v in values)]
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            texts += [v for _key, values in request.form.lists() for v in values]
        if any("\x00" in text_ for text_ in texts) or (request.is_json and b"\\u0000" in request.get_data()):
            if _is_api():
                from app.services.errors import ValidationFailed
                raise ValidationFailed({"body": [_("Texten innehåller ett NUL-tecken (\\u0000); ta bort det.")]})
            abort(400)


def _is_csrf_error(error: HTTPException) -> bool:
    return error.code == 400 and "CSRF" in (error.description or "")


def _http_texts(error: HTTPException) -> tuple[str, str]:
    """A title and an explanation of an HTTP error in the request's language."""
    if _is_csrf_error(error):
        return _("Felaktig begäran"), _("Formuläret har gått ut eller kom från en annan sida. Ladda om sidan och "
                                        "försök igen.")
    texts: dict[int | None, tuple[str, str]] = {
        400: (_("Felaktig begäran"), _("Begäran gick inte att tolka. Kontrollera det som skickades.")),
        401: (_("Inte inloggad"), _("Logga in och försök igen.")),
        403: (_("Ingen behörighet"), _("Du har inte behörighet till det här.")),
        404: (_("Hittades inte"), _("Det finns inget på den här adressen.")),
        405: (_("Metoden är inte tillåten"), _("Den här adressen tar inte emot den metoden.")),
        413: (_("För stort"), _("Det som skickades är för stort.")),
        429: (_("För många försök"), _("För många försök på kort tid. Vänta en stund och försök igen.")),
    }
    return texts.get(error.code, (error.name, error.description or error.name))


def _retry_after_header(error) -> int | None:
    response = getattr(error, "response", None)
    if response is not None and response.headers.get("Retry-After"):
        try:
            return int(response.headers["Retry-After"])
        except ValueError:
            return None
    return None


def _register_security_headers(app: Flask) -> None:
    @app.after_request
    def headers(response):
        stripe_js = app.config.get("STRIPE_JS_URL", "")
        script_src = "'self'"
        connect_src = "'self'"
        frame_src = "'none'"
        if g.get("allow_stripe"):
            from urllib.parse import urlsplit
            origin = "{0.scheme}://{0.netloc}".format(urlsplit(stripe_js))
            script_src += f" {origin}"
            connect_src += f" {origin}"
            base = app.config.get("STRIPE_API_BASE")
            if base:
                connect_src += " {0.scheme}://{0.netloc}".format(urlsplit(base))
            else:
                connect_src += " https://api.stripe.com"
            frame_src = f"{origin} https://hooks.stripe.com"
        response.headers.setdefault(
            "Content-Security-Policy",
            f"default-src 'self'; script-src {script_src}; style-src 'self'; img-src 'self' data:; "
            f"connect-src {connect_src}; frame-src {frame_src}; frame-ancestors 'none'; base-uri 'self'; "
            "form-action 'self'; object-src 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if _private(response):
            response.headers["Cache-Control"] = "no-store"
        if app.config.get("HSTS"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response


PRIVATE_MIMETYPES = ("text/csv", "application/pdf", "text/calendar")


def _private(response) -> bool:
    """Signed-in pages and answers, CSVs, PDFs and calendar feeds: no browser or proxy may keep a copy."""
    from flask_login import current_user
    if response.mimetype in PRIVATE_MIMETYPES:
        return True
    if g.get("api_user") is not None or request.headers.get("Authorization"):
        return True
    user = g.get("_login_user")  # only a user already loaded for this request (no extra database query)
    return bool(user is not None and getattr(user, "is_authenticated", False)) or (
        "_user_id" in session and current_user.is_authenticated)


def _register_template_helpers(app: Flask) -> None:
    from app.i18n import current_locale
    from app.web.formatting import register_filters
    register_filters(app)
    app.jinja_env.globals["current_locale"] = current_locale
    app.jinja_env.globals["url_with_lang"] = _url_with_lang


def _url_with_lang(lang: str) -> str:
    """This page's address with ?lang= set and every other query parameter kept."""
    from urllib.parse import urlencode
    args = [(key, value) for key, value in request.args.items(multi=True) if key != "lang"]
    return request.path + "?" + urlencode([*args, ("lang", lang)])



