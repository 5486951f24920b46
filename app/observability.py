"""What an operator sees of a running app: request ids, JSON logs, `GET /metrics`, optional error reporting (Sentry),
and the 503 a request gets while Redis or Stripe cannot be reached.

`init_app` runs first in create_app, so that the request id exists before any other hook (the rate limiter's
included) can log.
"""
from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, abort, g, request
from sqlalchemy import event
from sqlalchemy.orm import Session

import jsonlog as logs
from app import metrics

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,127}")
_PENDING_BOOKINGS = "metrics.pending_bookings"
_sentry_started = False


def init_app(app: Flask) -> None:
    logs.configure(app.config.get("LOG_LEVEL") or "INFO")
    _start_error_reporting(app)
    _count_bookings_at_commit()

    @app.before_request
    def start_request() -> None:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = given if SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def finish_request(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = request_id
        user_id = logs.current_user_id()
        request.environ[logs.ENVIRON_ROUTE] = request.endpoint or "-"  # for gunicorn's access log
        if user_id is not None:
            request.environ[logs.ENVIRON_USER_ID] = str(user_id)
        started = g.get("request_started")
        metrics.request_answered(request.endpoint, request.method, response.status_code,
                                 time.perf_counter() - started if started else 0.0)
        return response

    @app.get("/metrics")
    def prometheus_metrics():
        """Prometheus text for `Authorization: Bearer $METRICS_TOKEN`; no such page without a METRICS_TOKEN."""
        token = app.config.get("METRICS_TOKEN") or ""
        if not token:
            abort(404)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return Response("Authorization: Bearer <METRICS_TOKEN> required\n", 401, mimetype="text/plain",
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            return Response("wrong token\n", 403, mimetype="text/plain")
        body, content_type = metrics.exposition(_outbox_counts())
        return Response(body, 200, content_type=content_type)


def _outbox_counts() -> dict[str, int]:
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import OutboxEmail
    counts = {"pending": 0, "failed": 0}
    rows = db.session.execute(select(OutboxEmail.status, func.count(OutboxEmail.id))
                              .where(OutboxEmail.status.in_(tuple(counts))).group_by(OutboxEmail.status)).all()
    db.session.commit()
    counts.update({status: count for status, count in rows})
    return counts


# --- bookings are counted when they commit ------------------------------------------------------------------------


def _booking_created(booking: Any, **_payload: Any) -> None:
    from app.extensions import db
    db.session().info.setdefault(_PENDING_BOOKINGS, []).append(booking.payment_method)


def _committed(session: Session) -> None:
    for payment_method in session.info.pop(_PENDING_BOOKINGS, ()):
        metrics.booking_made(payment_method)


def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING_BOOKINGS, None)


def _count_bookings_at_commit() -> None:
    from app.services import events
    events.subscribe(events.BOOKING_CREATED, _booking_created)  # idempotent
    if not event.contains(Session, "after_commit", _committed):
        event.listen(Session, "after_commit", _committed)
        event.listen(Session, "after_rollback", _rolled_back)


# --- error reporting ------------------------------------------------------------------------------------------------


def _start_error_reporting(app: Flask) -> None:
    """Sentry, once per process, only when SENTRY_DSN is set (nothing is imported or sent without it)."""
    global _sentry_started
    dsn = app.config.get("SENTRY_DSN") or ""
    if not dsn or _sentry_started:
        return
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    sentry_sdk.init(dsn=dsn, environment=app.config.get("APP_ENV"), integrations=[FlaskIntegration()],
                    send_default_pii=False, traces_sample_rate=0.0)
    _sentry_started = True


# --- Redis and Stripe out of reach ----------------------------------------------------------------------------------


def unreachable_service(error: BaseException | None) -> str | None:
    """"redis" or "stripe" when `error` (or what caused it) says that service cannot be reached, else None."""
    from limits.errors import StorageError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from app.services import stripe_gateway
    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, (RedisConnectionError, RedisTimeoutError, StorageError)):
            return "redis"
        if stripe_gateway.unreachable(error):
            return "stripe"
        error = error.__cause__ or error.__context__
        seen += 1
    return None
