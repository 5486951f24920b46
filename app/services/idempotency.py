"""Idempotency keys: a retried request with the same key and body gets the first answer."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import IdempotencyKey
from app.services.base import now_or, unit_of_work
from app.services.errors import Conflict, DomainError, ValidationFailed

IN_PROGRESS = 0
STALE_AFTER = timedelta(minutes=2)


def request_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def _in_progress() -> str:
    return _("En begäran med den här Idempotency-Key behandlas fortfarande; försök igen om en stund.")


def run(user_id: int, key: str, data: Any, work: Callable[[], tuple[int, dict]], *,
        now: datetime | None = None) -> tuple[int, dict]:
    """Reserve the key, do the work once, store its answer; a repeat returns the stored answer."""
    now = now_or(now)
    key = (key or "").strip()
    if not key or len(key) > 255:
        raise ValidationFailed({"Idempotency-Key": [_("Mellan 1 och %(max)s tecken.", max=255)]})
    digest = request_hash(data)
    try:
        with unit_of_work():
            row = db.session.scalar(select(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id, IdempotencyKey.key == key))
            if row is not None:
                if row.request_hash != digest:
                    raise DomainError(_("Den här Idempotency-Key användes med en annan begäran; använd en ny "
                                        "nyckel för en ny begäran."), code="idempotency_key_reused")
                if row.response_status != IN_PROGRESS:
                    return row.response_status, json.loads(row.response_body)
                if now - row.created_at < STALE_AFTER:
                    raise Conflict(_in_progress(), code="idempotency_in_progress")
                row.created_at = now  # the first attempt died; take it over
            else:
                db.session.add(IdempotencyKey(user_id=user_id, key=key, request_hash=digest,
                                              response_status=IN_PROGRESS, response_body="", created_at=now))
    except IntegrityError:
        raise Conflict(_in_progress(), code="idempotency_in_progress") from None
    try:
        status, body = work()
    except DomainError as error:
        status, body = error.status, {"__error__": True, "code": error.code, "message": error.message,
                                      "facts": error.facts, "title": error.title}
    except BaseException:
        with unit_of_work():
            db.session.execute(delete(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id, IdempotencyKey.key == key))
        raise
    with unit_of_work():
        row = db.session.scalar(select(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.key == key))
        assert row is not None  # reserved above; only a failed work deletes it  # nosec B101
        row.response_status = status
        row.response_body = json.dumps(body, default=str)
    return status, body


def run_or_raise(user_id: int, key: str, data: Any, work: Callable[[], tuple[int, dict]], *,
                 now: datetime | None = None) -> dict:
    """As `run`, for a door that shows refusals itself (a page): the first answer's body, or its refusal raised
    again as the DomainError it was, so a repeated submit of a form shows what the first one got."""
    status, body = run(user_id, key, data, work, now=now)
    if not body.get("__error__"):
        return body
    facts = dict(body["facts"])
    error: DomainError
    if body["code"] == ValidationFailed.code and isinstance(facts.get("errors"), dict):
        error = ValidationFailed(facts.pop("errors"), body["message"])
    else:
        error = DomainError(body["message"], code=body["code"], status=status, **facts)
    error.title = body["title"]
    raise error
