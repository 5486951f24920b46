"""Delegations and their members."""
from __future__ import annotations

import secrets
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select, update
from stdnum.se import orgnr, personnummer

from app.extensions import db
from app.models import BedNight, Booking, Delegation, Member
from app.services import audit, itineraries
from app.services.access import owned_delegation
from app.services.accounts import normalise_email
from app.services.base import Actor, now_or, unit_of_work
from app.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.services.text import clean_text


def normalise_organisation_number(value) -> str:
    """A valid Swedish organisation number or personal identity number as NNNNNN-NNNN, else 422 `invalid`.

    An organisation number is 10 digits with a Luhn check digit and a third digit of at least 2
    (python-stdnum's orgnr checks the digits and the Luhn digit only); a personal identity number
    (a sole trader's) has a real date of birth and a Luhn check digit, and may be given with its century.
    """
    number = "".join(value.split()) if isinstance(value, str) else ""
    if orgnr.is_valid(number) and orgnr.compact(number)[2] >= "2":
        digits = orgnr.compact(number)
    elif personnummer.is_valid(number):
        compact = personnummer.compact(number)  # [YY]YYMMDD-NNNN or ...+NNNN
        digits = compact[-11:-5] + compact[-4:]
    else:
        raise ValidationFailed({"organisation_number": [_(
            "Ange ett giltigt svenskt organisationsnummer, tio siffror som 802000-1239 (den sista är en "
            "kontrollsiffra och den tredje minst 2), eller för en enskild firma personnumret (ÅÅMMDD-NNNN). "
            "Kontrollera siffrorna mot registreringsbeviset.")]})
    return f"{digits[:6]}-{digits[6:]}"


INVOICE_FIELDS = ("buyer_reference", "invoice_email", "address", "postal_code", "city")
INVOICE_LIMITS = {"buyer_reference": 100, "invoice_email": 254, "address": 300, "postal_code": 10, "city": 100}


def clean_invoice_details(values: dict, errors: dict[str, list[str]]) -> dict[str, str | None]:
    """The delegation's invoice details (each optional: None or blank clears it), checked and normalised."""
    out: dict[str, str | None] = {}
    for name, value in values.items():
        if name not in INVOICE_FIELDS:
            continue
        value = (value or "").strip() if isinstance(value, str) or value is None else value
        if not isinstance(value, str):
            errors[name] = [_("Text, högst %(max)s tecken.", max=INVOICE_LIMITS[name])]
            continue
        if not value:
            out[name] = None
            continue
        if len(value) > INVOICE_LIMITS[name]:
            errors[name] = [_("Högst %(max)s tecken.", max=INVOICE_LIMITS[name])]
            continue
        clean_text(value, name, errors=errors)
        if name == "invoice_email":
            try:
                value = normalise_email(value)
            except ValidationFailed as exc:
                errors[name] = exc.errors.get("email") or next(iter(exc.errors.values()))
                continue
        if name == "postal_code":
            compact = "".join(value.split())
            if not (compact.isdigit() and len(compact) == 5):
                errors[name] = [_("Ett svenskt postnummer, fem siffror som 621 55.")]
                continue
            value = f"{compact[:3]} {compact[3:]}"
        out[name] = value
    return out


def create_delegation(actor: Actor, name: str, organisation_number: str, *,
                      now: datetime | None = None,
                      invoice_details: dict[str, str | None] | None = None) -> Delegation:
    """Register an organisation's delegation under the acting coordinator (with its invoice details, optional)."""
    now = now_or(now)
    if actor.role != "coordinator":
        raise Forbidden(_("Bara samordnare registrerar delegationer."))
    errors: dict[str, list[str]] = {}
    details = clean_invoice_details(invoice_details or {}, errors)
    name = (name or "").strip()
    if not name or len(name) > 200:
        errors["name"] = [_("Organisationens namn, högst %(max)s tecken.", max=200)]
    clean_text(name, "name", errors=errors)
    number = None
    try:
        number = normalise_organisation_number(organisation_number)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work():
        delegation = Delegation(coordinator_id=actor.user_id, name=name, organisation_number=number,
                                calendar_token=secrets.token_urlsafe(24), created_at=now, **details)
        db.session.add(delegation)
        db.session.flush()
        audit.record(actor, "delegation.created", "delegation", delegation.id,
                     after={"name": name, "organisation_number": delegation.organisation_number}, now=now)
    return delegation


def update_invoice_details(actor: Actor, delegation_id: int, values: dict[str, str | None], *,
                           now: datetime | None = None) -> Delegation:
    """PATCH /delegations/{id}: change the invoice details given (the others stay)."""
    now = now_or(now)
    owned_delegation(actor, delegation_id)
    errors: dict[str, list[str]] = {}
    details = clean_invoice_details(values, errors)
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work():
        delegation = db.session.get_one(Delegation, delegation_id)
        before = {name: getattr(delegation, name) for name in details}
        for name, value in details.items():
            setattr(delegation, name, value)
        audit.record(actor, "delegation.invoice_details", "delegation", delegation_id, before=before,
                     after=details, now=now)
    return delegation


def add_member(actor: Actor, delegation_id: int, name: str, email: str, *,
               now: datetime | None = None) -> Member:
    """Add a person to the delegation."""
    now = now_or(now)
    owned_delegation(actor, delegation_id)
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name or len(name) > 200:
        errors["name"] = [_("Deltagarens namn, högst %(max)s tecken.", max=200)]
    clean_text(name, "name", errors=errors)
    try:
        email = normalise_email(email or "")
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work():
        member = Member(delegation_id=delegation_id, name=name, email=email,
                        itinerary_token=itineraries.new_token())
        db.session.add(member)
        db.session.flush()
        audit.record(actor, "member.added", "delegation", delegation_id, after={"member_id": member.id,
                                                                             "name": name}, now=now)
    return member


def _member_of(delegation_id: int, member_id: int) -> Member:
    member = db.session.get(Member, member_id)
    if member is None or member.delegation_id != delegation_id:
        raise NotFound(_("Deltagaren finns inte."))
    return member


def update_member(actor: Actor, delegation_id: int, member_id: int, *, name: str | None = None,
                  email: str | None = None, now: datetime | None = None) -> Member:
    """Rename a member or change the e-mail; the rooming list follows (it refers to the member). A new address
    gets a new itinerary link (the old one stops working) and, when the member has a bed, the itinerary."""
    now = now_or(now)
    owned_delegation(actor, delegation_id)
    errors: dict[str, list[str]] = {}
    if name is not None:
        name = name.strip()
        if not name or len(name) > 200:
            errors["name"] = [_("Deltagarens namn, högst %(max)s tecken.", max=200)]
        clean_text(name, "name", errors=errors)
    if email is not None:
        try:
            email = normalise_email(email)
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    with unit_of_work():
        member = _member_of(delegation_id, member_id)
        before = {"name": member.name, "email": member.email}
        if name is not None:
            member.name = name
        if email is not None and email != member.email:
            member.email = email
            # Whoever had the old address (a typo's stranger, a colleague who left) may have the old link.
            member.itinerary_token = itineraries.new_token()
        audit.record(actor, "member.updated", "delegation", delegation_id,
                     before={"member_id": member_id, **before},
                     after={"member_id": member_id, "name": member.name, "email": member.email}, now=now)
        itineraries.refresh([member_id], now=now)  # a new address with a bed gets the itinerary and its new link
    return member


LIVE_STATUSES = ("awaiting_payment", "confirmed", "completed")


def remove_member(actor: Actor, delegation_id: int, member_id: int, *, now: datetime | None = None) -> None:
    """Remove a member who has no bed in a live booking (409 member_has_beds otherwise)."""
    now = now_or(now)
    owned_delegation(actor, delegation_id)
    with unit_of_work():
        db.session.execute(select(Delegation.id).where(Delegation.id == delegation_id).with_for_update())
        member = _member_of(delegation_id, member_id)
        beds = db.session.scalar(select(BedNight.id).join(Booking, Booking.id == BedNight.booking_id).where(
            BedNight.member_id == member_id, BedNight.state.in_(("booked", "held")),
            Booking.status.in_(LIVE_STATUSES)).limit(1))
        if beds is not None:
            raise Conflict(_("%(name)s har en bädd i en bokning. Ta bort personen ur rumsfördelningen först.",
                             name=member.name), code="member_has_beds")
        # Bed-nights of cancelled or expired bookings only remember the name; they let go of the member.
        db.session.execute(update(BedNight).where(BedNight.member_id == member_id).values(member_id=None))
        db.session.delete(member)
        audit.record(actor, "member.removed", "delegation", delegation_id,
                     before={"member_id": member_id, "name": member.name}, now=now)
