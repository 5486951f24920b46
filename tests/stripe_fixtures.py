"""Fixtures for payment tests: a real localstripe process, the app served over HTTP, signed events.

tests/conftest.py registers this module as a plugin, so its fixtures reach every test by name; test
modules import only its plain functions (`from tests.stripe_fixtures import ...`). localstripe runs once
per test session on a free port; each test gets the app (SQLite or PostgreSQL, from conftest's `app`)
pointed at it, and, where asked, a live server on a free port that localstripe's real signed webhooks reach.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
import requests
import stripe
from sqlalchemy import func, select
from werkzeug.serving import make_server

from app.extensions import db
from app.models import AuditEntry, Booking
from app.services import booking as booking_service
from app.services.base import Actor
from tests.helpers import YEAR
from tools.localstripe import free_port, register_webhook, start

WEBHOOK_NAME = "sangplats"
CHECK_IN = date(YEAR, 6, 20)
CHECK_OUT = date(YEAR, 6, 22)


@pytest.fixture(scope="session")
def localstripe_base():
    """localstripe on 127.0.0.1:<free port> for the whole session (our own child process)."""
    port = free_port()
    process = start(port)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def stripe_app(app, localstripe_base):
    """The test app talking to localstripe, with a webhook secret of its own."""
    app.config.update(
        STRIPE_API_BASE=localstripe_base,
        STRIPE_JS_URL=f"{localstripe_base}/js.stripe.com/v3/",
        STRIPE_SECRET_KEY="sk_test_sangplats",
        STRIPE_PUBLISHABLE_KEY="pk_test_sangplats",
        STRIPE_WEBHOOK_SECRET=f"whsec_test_{uuid.uuid4().hex}",
    )
    from app.services.stripe_gateway import configure_stripe
    configure_stripe()
    return app


@pytest.fixture
def live_server(stripe_app):
    """The same app (same database) served over HTTP by werkzeug in a thread; yields its base URL."""
    server = make_server("127.0.0.1", free_port(), stripe_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def mute_webhooks(base: str) -> None:
    """Make localstripe send nothing to us (its webhook list is global to the process)."""
    response = requests.post(f"{base}/_config/webhooks/{WEBHOOK_NAME}",
                             data={"url": "http://127.0.0.1:9/", "secret": "whsec_muted", "events[]": "never.sent"},
                             timeout=5)
    response.raise_for_status()


@pytest.fixture
def stripe_webhooks(stripe_app, live_server, localstripe_base):
    """localstripe's real, signed webhooks delivered to our live server for this test."""
    register_webhook(localstripe_base, f"{live_server}/stripe/webhook", stripe_app.config["STRIPE_WEBHOOK_SECRET"],
                     name=WEBHOOK_NAME)
    yield live_server
    mute_webhooks(localstripe_base)


@pytest.fixture
def no_stripe_webhooks(stripe_app, localstripe_base):
    """localstripe sends no events in this test: only other triggers can act."""
    mute_webhooks(localstripe_base)
    yield


def signed_headers(payload: bytes, secret: str, timestamp: int | None = None) -> dict:
    """A Stripe-Signature header made the way Stripe makes it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={signature}", "Content-Type": "application/json"}


def event_payload(event_type: str, obj: dict, event_id: str | None = None) -> bytes:
    return json.dumps({
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": event_type,
        "api_version": "2024-06-20", "created": int(time.time()), "livemode": False,
        "data": {"object": obj}, "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
    }).encode()


def wait_for(condition: Callable[[], object], timeout: float = 20.0, what: str = "condition"):
    """Poll until `condition()` is truthy (fresh database reads each time), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()
        db.session.expire_all()
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def confirmations(booking_id: int) -> int:
    """How many times the booking was confirmed (audit entries)."""
    return db.session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.object_type == "booking", AuditEntry.object_id == str(booking_id),
        AuditEntry.action.in_(("booking.confirmed", "booking.confirmed_late")))) or 0


def booking_status(booking_id: int) -> str:
    db.session.rollback()
    return db.session.scalar(select(Booking.status).where(Booking.id == booking_id))


def card_booking(coordinator, delegation, bed_ids, *, now: datetime | None = None,
                 check_in: date = CHECK_IN, check_out: date = CHECK_OUT) -> Booking:
    """A card booking through the booking service: a hold awaiting payment."""
    return booking_service.create_booking(
        Actor(coordinator.id, "coordinator"), delegation_id=delegation.id, bed_ids=list(bed_ids),
        check_in=check_in, check_out=check_out, accept_contract=True, payment_method="card", now=now)


def card_method(number: str) -> str:
    """A PaymentMethod for a test card number, made at localstripe (what Stripe.js does in a browser)."""
    return stripe.PaymentMethod.create(type="card", card={"number": number, "exp_month": 12, "exp_year": 2030,
                                                          "cvc": "123"}).id


def authenticate_3ds(base: str, intent_id: str, client_secret: str, success: bool = True) -> dict:
    """Finish 3-D Secure the way localstripe's Stripe.js does in the browser."""
    response = requests.post(f"{base}/v1/payment_intents/{intent_id}/_authenticate",
                             params={"success": "true" if success else "false"},
                             json={"key": "pk_test_sangplats", "client_secret": client_secret}, timeout=10)
    response.raise_for_status()
    return response.json()


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)
