"""Health: the worker's heartbeat and what `/healthz` reports (the database, the worker, the outbox, mail).

`report` reads the newest heartbeat and the number of messages waiting in one statement, so a health check
costs one database round trip, as it did when it was `SELECT 1`.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import delete, func, select, update

from app.extensions import db
from app.models import OutboxEmail, WorkerHeartbeat
from app.services import mail
from app.services.base import now_or, unit_of_work

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

LATE_AFTER = timedelta(minutes=2)  # no heartbeat for this long: `worker: "late"`
FORGET_AFTER = timedelta(days=1)  # rows of workers gone this long (killed, never stopped) are removed


def beat(name: str, *, now: datetime | None = None) -> None:
    """Renew this worker's heartbeat (its first beat adds its row). Only this worker writes its row."""
    now = now_or(now)
    with unit_of_work():
        renewed = cast("CursorResult[Any]", db.session.execute(update(WorkerHeartbeat).where(
            WorkerHeartbeat.name == name).values(beat_at=now))).rowcount  # an UPDATE's result is a CursorResult
        if not renewed:
            db.session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < now - FORGET_AFTER))
            db.session.add(WorkerHeartbeat(name=name, started_at=now, beat_at=now))


def stopped(name: str) -> None:
    """A worker that stops removes its row: with no other worker, /healthz says `late` at once."""
    with unit_of_work():
        db.session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.name == name))


def report(*, now: datetime | None = None) -> dict[str, Any]:
    """What /healthz answers while the database is reachable (one statement)."""
    now = now_or(now)
    newest_beat = select(func.max(WorkerHeartbeat.beat_at)).scalar_subquery()
    waiting = select(func.count(OutboxEmail.id)).where(OutboxEmail.status == "pending").scalar_subquery()
    beat_at, outbox = db.session.execute(select(newest_beat, waiting)).one()
    db.session.commit()
    return {"status": "ok", "db": "ok", "worker": "ok" if beat_at is not None and beat_at > now - LATE_AFTER
            else "late", "outbox": outbox, "mail": mail.delivery_mode()}
