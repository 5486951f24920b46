"""Delegations and their members."""
from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Optional

from flask_babel import gettext as _

from app.extensions import db
from app.models import Delegation, Member
from app.services import audit
from app.services.accounts import normalise_email
from app.services.base import Actor, now_or, unit_of_work
from app.services.booking import owned_delegation
from app.services.errors import Forbidden, ValidationFailed

ORGANISATION_NUMBER = re.compile(r"^\d{6}-?\d{4}$")


def create_delegation(actor: Actor, name: str, organisation_number: str, *,
                      now: Optional[datetime] = None) -> Delegation:
    """Register an organisation's delegation under the acting coordinator."""
    now = now_or(now)
    if actor.role != "coordinator":
        raise Forbidden(_("Bara samordnare registrerar delegationer."))
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name or len(name) > 200:
        errors["name"] = [_("Organisationens namn, högst %(max)s tecken.", max=200)]
    number = (organisation_number or "").strip()
    if not ORGANISATION_NUMBER.match(number):
        errors["organisation_number"] = [_("Ett svenskt organisationsnummer, till exempel 802000-1234.")]
    if errors:
        raise ValidationFailed(errors)
    digits = number.replace("-", "")
    with unit_of_work():
        delegation = Delegation(coordinator_id=actor.user_id, name=name,
                                organisation_number=f"{digits[:6]}-{digits[6:]}",
                                calendar_token=secrets.token_urlsafe(24), created_at=now)
        db.session.add(delegation)
        db.session.flush()
        audit.record(actor, "delegation.created", "delegation", delegation.id,
                     after={"name": name, "organisation_number": delegation.organisation_number}, now=now)
    return delegation


def add_member(actor: Actor, delegation_id: int, name: str, email: str, *,
               now: Optional[datetime] = None) -> Member:
    """Add a person to the delegation."""
    now = now_or(now)
    owned_delegation(actor, delegation_id)
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name or len(name) > 200:
        errors["name"] = [_("Deltagarens namn, högst %(max)s tecken.", max=200)]
    try:
        email = normalise_email(email or "")
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work():
        member = Member(delegation_id=delegation_id, name=name, email=email)
        db.session.add(member)
        db.session.flush()
        audit.record(actor, "member.added", "delegation", delegation_id, after={"member_id": member.id,
                                                                             "name": name}, now=now)
    return member
