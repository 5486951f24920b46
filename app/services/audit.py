"""The audit log: one entry per state change, with actor, time and address."""
from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from app.extensions import db
from app.models import AuditEntry, utcnow
from app.services.base import Actor, unit_of_work


def _json(value: Any) -> str | None:
    if value is None:
        return None

    def default(obj):
        if isinstance(obj, (date, datetime)):
            return obj.isoformat()
        raise TypeError(type(obj).__name__)

    return json.dumps(value, default=default, ensure_ascii=False, sort_keys=True)


def record(
    actor: Actor,
    action: str,
    object_type: str | None = None,
    object_id: Any = None,
    before: Any = None,
    after: Any = None,
    now: datetime | None = None,
) -> AuditEntry:
    """Add an audit entry to the current unit of work (it commits with it)."""
    entry = AuditEntry(
        actor_id=actor.user_id,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        before=_json(before),
        after=_json(after),
        ip=actor.ip,
        at=now or utcnow(),
    )
    db.session.add(entry)
    return entry


def record_now(actor: Actor, action: str, **kwargs: Any) -> None:
    """Write one audit entry in its own transaction (e.g. a failed login, which changes nothing else)."""
    with unit_of_work():
        record(actor, action, **kwargs)
