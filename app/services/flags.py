"""Flags against hosts and their resolution; upheld flags cost a strike."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from app.extensions import db
from app.i18n import local_dt
from app.models import FLAG_CATEGORIES, Booking, Flag, FlagAppeal, User
from app.services import audit, events
from app.services.base import Actor, now_or, unit_of_work
from app.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.services.text import clean_text
from app.services.vetting import MIN_REASONS, give_strike, remove_strike


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
    events.emit(events.FLAG_CREATED, flag=flag, now=now)
    return flag


def resolve_flag(actor: Actor, flag_id: int, decision: str, note: str, *, now: datetime | None = None) -> Flag:
    """An admin upholds (a strike, unless one was already given) or dismisses a flag."""
    now = now_or(now)
    if not actor.is_admin:
        raise Forbidden(_("Bara administratörer prövar anmälningar."))
    if decision not in ("upheld", "dismissed"):
        raise ValidationFailed({"decision": [_("Välj 'upheld' (fastställ) eller 'dismissed' (avskriv).")]})
    with unit_of_work():
        flag = db.session.scalars(select(Flag).where(Flag.id == flag_id).with_for_update()
                                  .execution_options(populate_existing=True)).one_or_none()
        if flag is None:
            raise NotFound(_("Anmälan finns inte."))
        if flag.status == "open":  # a resolved flag answers state_changed below, whatever the note
            note = _statement_of_reasons(note)
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
            _profile, flag.strike_suspended_from = give_strike(actor, flag.host_id, f"flag {flag.id} upheld",
                                                               now=now)
        events.emit(events.FLAG_RESOLVED, flag=flag, now=now)
    return flag


# ---------------------------------------------------------------------------------------------
# A fair hearing (issue 17; EU DSA art. 17 and 20): the host sees and answers flags, every decision carries a
# statement of reasons, and one appeal per decision is decided by another admin.
# ---------------------------------------------------------------------------------------------

RESPONSE_DAYS = 7


def _statement_of_reasons(note: str | None) -> str:
    note = (note or "").strip()
    if len(note) > 5000:
        raise ValidationFailed({"note": [_("Högst %(max)s tecken.", max=5000)]})
    if len(note) < MIN_REASONS:
        raise ValidationFailed({"note": [_(
            "Skriv en motivering på minst %(min)s tecken; den skickas till värden: vad som hänt, vilken regel i "
            "säsongens villkor, följden och hur värden överklagar.", min=MIN_REASONS)]})
    clean_text(note, "note", multiline=True)
    return note


def _text(text: str | None, field: str) -> str:
    text = (text or "").strip()
    if not text or len(text) > 5000:
        raise ValidationFailed({field: [_("Skriv din text (högst %(max)s tecken).", max=5000)]})
    clean_text(text, field, multiline=True)
    return text


def flags_of_host(actor: Actor) -> list[Flag]:
    """Every flag about the acting host, newest first."""
    if actor.role != "host":
        raise Forbidden(_("Bara värdar ser anmälningarna mot sig."))
    return list(db.session.scalars(select(Flag).where(Flag.host_id == actor.user_id)
                                   .order_by(Flag.created_at.desc(), Flag.id.desc())))


def appeal_of(flag_id: int) -> FlagAppeal | None:
    return db.session.scalar(select(FlagAppeal).where(FlagAppeal.flag_id == flag_id))


def response_closes_at(flag: Flag) -> datetime:
    return flag.created_at + timedelta(days=RESPONSE_DAYS)


def own_flag(actor: Actor, flag_id: int) -> Flag:
    """A flag about the acting host; anyone else gets 404 (read only: the writers lock it again)."""
    flag = db.session.get(Flag, flag_id)
    if flag is None or actor.role != "host" or flag.host_id != actor.user_id:
        raise NotFound(_("Anmälan finns inte."))
    return flag


def _own_flag_locked(actor: Actor, flag_id: int) -> Flag:
    flag = db.session.scalars(select(Flag).where(Flag.id == flag_id).with_for_update()
                              .execution_options(populate_existing=True)).one_or_none()
    if flag is None or actor.role != "host" or flag.host_id != actor.user_id:
        raise NotFound(_("Anmälan finns inte."))
    return flag


def respond(actor: Actor, flag_id: int, text: str, *, now: datetime | None = None) -> Flag:
    """The host answers a flag about them within 7 days of it (after: 409 response_closed); a later answer within
    the time replaces the earlier one."""
    now = now_or(now)
    own_flag(actor, flag_id)
    text = _text(text, "text")
    with unit_of_work():
        flag = _own_flag_locked(actor, flag_id)
        if now > response_closes_at(flag):
            raise Conflict(_("Tiden för att svara på anmälan gick ut %(when)s.",
                             when=local_dt(response_closes_at(flag), "d MMM y HH:mm")), code="response_closed",
                           closed_at=response_closes_at(flag).isoformat())
        flag.response, flag.responded_at = text, now
        audit.record(actor, "flag.response", "flag", flag.id, after={"chars": len(text)}, now=now)
    return flag


def appeal(actor: Actor, flag_id: int, text: str, *, now: datetime | None = None) -> FlagAppeal:
    """The host appeals the decision on a flag, once (a second: 409 appeal_exists)."""
    now = now_or(now)
    own_flag(actor, flag_id)
    text = _text(text, "text")
    with unit_of_work():
        flag = _own_flag_locked(actor, flag_id)
        if flag.status == "open":
            raise Conflict(_("Anmälan är inte prövad än; svara på den i stället."), code="not_decided",
                           status_now=flag.status)
        if appeal_of(flag.id) is not None:
            raise Conflict(_("Beslutet är redan överklagat; ett beslut överklagas en gång."), code="appeal_exists")
        item = FlagAppeal(flag_id=flag.id, host_id=flag.host_id, text=text, status="open", created_at=now)
        db.session.add(item)
        db.session.flush()  # UNIQUE (flag_id) refuses a second appeal whatever the lock
        audit.record(actor, "flag.appeal", "flag", flag.id, after={"appeal_id": item.id}, now=now)
    return item


def decide_appeal(actor: Actor, flag_id: int, decision: str, note: str, *, now: datetime | None = None
                  ) -> FlagAppeal:
    """An admin other than the one who decided the flag decides its appeal: upheld (the decision stands) or
    overturned (the flag is dismissed, its strike removed and, if that strike suspended the host, the status they
    had before restored). The note is the statement of reasons sent to the host."""
    now = now_or(now)
    if not actor.is_admin:
        raise Forbidden(_("Bara administratörer prövar överklaganden."))
    if decision not in ("upheld", "overturned"):
        raise ValidationFailed({"decision": [_("Välj 'upheld' (beslutet står fast) eller 'overturned' (upphävs).")]})
    note = _statement_of_reasons(note)
    with unit_of_work():
        flag = db.session.scalars(select(Flag).where(Flag.id == flag_id).with_for_update()
                                  .execution_options(populate_existing=True)).one_or_none()
        if flag is None:
            raise NotFound(_("Anmälan finns inte."))
        if flag.resolved_by_id == actor.user_id:
            raise Forbidden(_("Du fattade beslutet om anmälan; en annan administratör prövar överklagandet."),
                            code="conflict_of_interest")
        item = db.session.scalars(select(FlagAppeal).where(FlagAppeal.flag_id == flag.id).with_for_update()
                                  .execution_options(populate_existing=True)).one_or_none()
        if item is None:
            raise NotFound(_("Beslutet är inte överklagat."))
        if item.status != "open":
            raise Conflict(_("Överklagandet är redan prövat."), code="state_changed", status_now=item.status)
        item.status, item.decided_by_id, item.decided_at, item.note = decision, actor.user_id, now, note
        before = {"flag_status": flag.status, "strike_given": flag.strike_given}
        if decision == "overturned":
            if flag.strike_given:
                remove_strike(actor, flag.host_id, note, restore_status=flag.strike_suspended_from, now=now)
                flag.strike_given = False
            flag.status = "dismissed"
        audit.record(actor, f"flag.appeal_{decision}", "flag", flag.id, before=before,
                     after={"flag_status": flag.status, "strike_given": flag.strike_given, "note": note}, now=now)
        events.emit(events.FLAG_APPEAL_DECIDED, flag=flag, appeal=item, now=now)
    return item
