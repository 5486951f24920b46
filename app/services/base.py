"""The unit of work every service runs in."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from app.db_setup import WRITE_OPTION
from app.extensions import db
from app.models import User, utcnow

_OPEN = "unit_of_work_open"  # session.info key: set while a unit of work runs


@dataclass(frozen=True)
class Actor:
    """Who acts, passed explicitly to every service (never `current_user`)."""

    user_id: int | None
    role: str  # host | coordinator | admin | system | public
    ip: str | None = None

    @classmethod
    def of(cls, user: User, ip: str | None = None) -> Actor:
        return cls(user_id=user.id, role=user.role, ip=ip)

    @classmethod
    def system(cls) -> Actor:
        return cls(user_id=None, role="system")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class NestedUnitOfWork(RuntimeError):
    """A unit of work was opened inside another one: a programming error, never a user's."""


@contextmanager
def unit_of_work() -> Iterator[None]:
    """Run a write transaction: commit on success, roll back on any exception.

    Any read transaction the request already had is ended first, so that on SQLite the
    write transaction starts with BEGIN IMMEDIATE and its reads see the latest data
    under the write lock.

    Nesting is refused (NestedUnitOfWork), by design: an inner unit would commit the outer
    one's half-done work when it ends, so a failure after it could no longer roll that back.
    A service that another service also needs inside its own transaction splits into the
    public function (which opens the unit of work) and a helper that only flushes; the
    outer service calls the helper. Steps that must commit on their own (a Stripe call
    between two writes) run one unit of work after the other, never one inside another.
    """
    session = db.session()
    if session.info.get(_OPEN):
        raise NestedUnitOfWork("unit_of_work() opened inside another unit_of_work(); call the flush-only helper")
    if session.in_transaction():
        session.commit()
    session.connection(execution_options={WRITE_OPTION: True})
    session.info[_OPEN] = True
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.info.pop(_OPEN, None)


STOCKHOLM = ZoneInfo("Europe/Stockholm")


def local_date(moment: datetime) -> date:
    """The calendar date in Visby (Stockholm time) of a moment."""
    return moment.astimezone(STOCKHOLM).date()


def now_or(now: datetime | None) -> datetime:
    return now if now is not None else utcnow()
