"""Flags against hosts and their resolution; upheld flags cost a strike."""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select

from app.extensions import db
from app.models import FLAG_CATEGORIES, Booking, Flag, User
from app.services import audit, events
from app.services.base import Actor, now_or, unit_of_work
from app.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.services.text import clean_text
from app.services.vetting import add_strike


def create_flag(actor: Actor, *, host_id: int, category: str, description: str, booking_id: int | None = None,
                now: datetime | None = None) -> Flag:
    """A coordinator or admin reports a host."""
    now = now_or(now)
    if actor.role not in ("coordinator", "admin"):
        raise Forbidden(_("Bara samordnare och administratörer anmäler värdar."))
    errors: dict[str, list[str]] = {}
    if category not in FLAG_CATEGORIES:
        errors["category"] = [_("Välj en av: %(choices)s.", choices=", ".join(FLAG_CATEGORIES))]
    description = (description or "").strip()
    if not description or len(description) > 5000:
        errors["description"] = [_("Beskriv vad som hände (högst %(max)s tecken).", max=5000)]
    clean_text(description, "description", multiline=True, errors=errors)
    if errors:
        raise ValidationFailed(errors)
    host = db.session.get(User, host_id)
    if host is None or host.role != "host":
        raise NotFound(_("Värden finns inte."))
    if booking_id is not None:
        booking = db.session.get(Booking, booking_id)
        if booking is None or (not actor.is_admin and booking.coordinator_id != actor.user_id):
            raise NotFound(_("Bokningen finns inte."))
        if booking.host_id != host_id:
            raise ValidationFailed({"booking_id": [_("Bokningen är inte hos den värden.")]})
    with unit_of_work():
        flag = _add_flag(actor, host_id=host_id, reporter_id=actor.user_id, source=actor.role, booking_id=booking_id,
                         category=category, description=description, now=now)
    return flag


def add_system_flag(actor: Actor, *, host_id: int, booking_id: int, category: str, description: str,
                    strike_given: bool, now: datetime) -> Flag:
    """A flag the system raises itself (a host's cancellation), inside the caller's unit of work: only flushes."""
    return _add_flag(actor, host_id=host_id, reporter_id=None, source="system", booking_id=booking_id,
                     category=category, description=description, strike_given=strike_given, now=now)


def add_report_flag(actor: Actor, *, host_id: int, booking_id: int, category: str, description: str,
                    now: datetime) -> Flag:
    """A coordinator's report on arrival opens a flag with its facts, inside the caller's unit of work (flush
    only)."""
    return _add_flag(actor, host_id=host_id, reporter_id=actor.user_id, source=actor.role, booking_id=booking_id,
                     category=category, description=description, now=now)


def _add_flag(actor: Actor, *, host_id: int, reporter_id: int | None, source: str, booking_id: int | None,
              category: str, description: str, now: datetime, strike_given: bool = False) -> Flag:
    """The one place a flag row is written, always with its flag.created audit entry."""
    flag = Flag(host_id=host_id, reporter_id=reporter_id, source=source, booking_id=booking_id, category=category,
                description=description, status="open", strike_given=strike_given, created_at=now)
    db.session.add(flag)
    db.session.flush()
    audit.record(actor, "flag.created", "flag", flag.id,
                 after={"host_id": host_id, "category": category, "booking_id": booking_id, "source": source},
                 now=now)
    return flag


def resolve_flag(actor: Actor, flag_id: int, decision: str, note: str, *, now: datetime | None = None) -> Flag:
    """An admin upholds (a strike, unless one was already given) or dismisses a flag."""
    now = now_or(now)
    if not actor.is_admin:
        raise Forbidden(_("Bara administratörer prövar anmälningar."))
    if decision not in ("upheld", "dismissed"):
        raise ValidationFailed({"decision": [_("Välj 'upheld' (fastställ) eller 'dismissed' (avskriv).")]})
    note = (note or "").strip()
    if len(note) > 5000:
        raise ValidationFailed({"note": [_("Högst %(max)s tecken.", max=5000)]})
    clean_text(note, "note", multiline=True)
    with unit_of_work():
        flag = db.session.scalars(select(Flag).where(Flag.id == flag_id).with_for_update()
                                  .execution_options(populate_existing=True)).one_or_none()
        if flag is None:
            raise NotFound(_("Anmälan finns inte."))
        if flag.status != "open":
            # Someone else resolved it first (a flag is resolved once): the loser of that race.
            raise Conflict(_("Anmälan är redan %(outcome)s.", outcome=_("fastställd") if flag.status == "upheld"
                             else _("avskriven")), code="state_changed", status_now=flag.status)
        flag.status = decision
        flag.resolution = note
        flag.resolved_by_id = actor.user_id
        flag.resolved_at = now
        audit.record(actor, f"flag.{decision}", "flag", flag.id, after={"note": note}, now=now)
        if decision == "upheld" and not flag.strike_given:
            flag.strike_given = True
            add_strike(actor, flag.host_id, f"flag {flag.id} upheld", now=now)
        events.emit(events.FLAG_RESOLVED, flag=flag, now=now)
    return flag
