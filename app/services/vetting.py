"""Host vetting: profiles, the admin's decisions, strikes and suspension."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select, update

from app.extensions import db
from app.labels import in_sentence
from app.models import MAX_UPLOAD_BYTES, Booking, Delegation, HostProfile, User
from app.services import audit, events, uploads
from app.services.base import Actor, now_or, unit_of_work
from app.services.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from app.services.seasons import current_season, stockholm_today
from app.services.text import clean_text, phone_number

GOTLAND_POSTAL_CODE = re.compile(r"^62\d ?\d\d$")
DECISIONS = {
    # decision: (allowed from, new status)
    "approve": (("pending", "rejected"), "approved"),
    "reject": (("pending", "approved"), "rejected"),
    "suspend": (("approved", "pending"), "suspended"),
    "reinstate": (("suspended",), "approved"),
}


# A statement of reasons (EU DSA art. 17): the facts, the rule, the consequence, how to appeal; at least this long.
MIN_REASONS = 20


def _no_profile() -> str:
    return _("Det finns ingen värdprofil med det id:t.")


def normalise_gotland_postal_code(postal_code: str) -> str:
    """Return '62x xx' or raise not_on_gotland."""
    code = (postal_code or "").strip()
    if not GOTLAND_POSTAL_CODE.match(code):
        raise DomainError(
            _("Sängplats gäller bostäder på Gotland: postnumret ska vara 62x xx (till exempel 621 55)."),
            code="not_on_gotland", field="postal_code",
        )
    digits = code.replace(" ", "")
    return f"{digits[:3]} {digits[3:]}"


VAT_RATES = (6, 12, 25)  # Swedish rates; accommodation is 12 %


def invoicing_details(organisation_number: str | None, vat_number: str | None, vat_rate_pct: int | None,
                      errors: dict[str, list[str]]) -> tuple[str | None, str | None, int | None]:
    """The host's optional seller details for invoices: an organisation (or personal) number, and for a
    VAT-registered host the VAT number (SE + the 10 digits of the organisation number + 01) and the rate."""
    from app.services.delegations import normalise_organisation_number
    number = None
    if organisation_number and organisation_number.strip():
        try:
            number = normalise_organisation_number(organisation_number)
        except ValidationFailed as exc:
            errors.update(exc.errors)
    vat = "".join((vat_number or "").split()).upper() or None
    if vat is not None and not (len(vat) == 14 and vat.startswith("SE") and vat.endswith("01")
                                and vat[2:12].isdigit()):
        errors["vat_number"] = [_("Ett svenskt momsregistreringsnummer: SE, tolv siffror, slutar på 01 "
                                  "(SE556677889901).")]
    if vat_rate_pct is not None and vat_rate_pct not in VAT_RATES:
        errors["vat_rate_pct"] = [_("Momssatsen är 6, 12 eller 25 procent (uthyrning av rum: 12).")]
    if (vat is None) != (vat_rate_pct is None) and "vat_number" not in errors:
        errors["vat_rate_pct"] = [_("Ange både momsregistreringsnummer och momssats, eller ingetdera "
                                    "(uthyrning utan moms).")]
    return number, vat, vat_rate_pct


def submit_profile(actor: Actor, *, legal_name: str, phone: str, address: str, postal_code: str,
                   right_to_rent: bool, organisation_number: str | None = None, vat_number: str | None = None,
                   vat_rate_pct: int | None = None, now: datetime | None = None) -> HostProfile:
    """Submit or update the host's vetting details; it goes (back) to the admins' queue."""
    now = now_or(now)
    if actor.role != "host":
        raise Forbidden(_("Bara värdar har en värdprofil."))
    errors: dict[str, list[str]] = {}
    org_number, vat_number, vat_rate_pct = invoicing_details(organisation_number, vat_number, vat_rate_pct, errors)
    for field, value, limit in (("legal_name", legal_name, 200), ("phone", phone, 40), ("address", address, 300)):
        if not (value or "").strip() or len(value) > limit:
            errors[field] = [_("Obligatoriskt, högst %(max)s tecken.", max=limit)]
        clean_text(value, field, errors=errors)
    if "phone" not in errors:
        phone_number(phone, errors=errors)
    if right_to_rent is not True:
        errors["right_to_rent"] = [_("Du måste intyga att du har rätt att hyra ut bostaden.")]
    if errors:
        raise ValidationFailed(errors)
    postal_code = normalise_gotland_postal_code(postal_code)
    with unit_of_work():
        profile = db.session.get(HostProfile, actor.user_id)
        before = _profile_facts(profile) if profile else None
        if profile is not None and profile.vetting_status == "suspended":
            raise Conflict(_("Ditt konto är avstängt; kontakta Sängplats för att bli återställd."),
                           code="host_suspended")
        if profile is None:
            profile = HostProfile(user_id=actor.user_id, calendar_token=secrets.token_urlsafe(24), strikes=0)
            db.session.add(profile)
        profile.legal_name = legal_name.strip()
        profile.phone = phone.strip()
        profile.address = address.strip()
        profile.postal_code = postal_code
        profile.right_to_rent = True
        profile.organisation_number = org_number
        profile.vat_number = vat_number
        profile.vat_rate_pct = vat_rate_pct
        profile.vetting_status = "pending"
        profile.submitted_at = now
        db.session.flush()
        audit.record(actor, "host.profile_submitted", "host", actor.user_id, before=before,
                     after=_profile_facts(profile), now=now)
    return profile


def _profile_facts(profile: HostProfile) -> dict:
    return {"legal_name": profile.legal_name, "postal_code": profile.postal_code,
            "vetting_status": profile.vetting_status, "strikes": profile.strikes}


def decide(actor: Actor, host_user_id: int, decision: str, reason: str, *,
           now: datetime | None = None) -> HostProfile:
    """An admin approves, rejects, suspends or reinstates a host, with a reason."""
    now = now_or(now)
    if not actor.is_admin:
        raise Forbidden(_("Bara administratörer granskar värdar."))
    if decision not in DECISIONS:
        raise ValidationFailed({"decision": [_("Välj approve (godkänn), reject (avslå), suspend (stäng av) eller "
                                               "reinstate (återställ).")]})
    reason = (reason or "").strip()
    if len(reason) > 1000:
        raise ValidationFailed({"reason": [_("Högst %(max)s tecken.", max=1000)]})
    clean_text(reason, "reason", multiline=True)
    if decision == "suspend" and len(reason) < MIN_REASONS:
        raise ValidationFailed({"reason": [_(
            "En avstängning kräver en motivering på minst %(min)s tecken: vad som hänt, vilken regel i "
            "säsongens villkor, följden och hur värden överklagar.", min=MIN_REASONS)]})
    allowed_from, new_status = DECISIONS[decision]
    # The status this decision was taken on: if another decision or a strike changes it before this one
    # holds the row, this one lost the race (state_changed), even where the new status would allow it.
    seen = db.session.scalar(select(HostProfile.vetting_status).where(HostProfile.user_id == host_user_id))
    with unit_of_work():
        profile = db.session.scalars(select(HostProfile).where(HostProfile.user_id == host_user_id)
                                     .with_for_update().execution_options(populate_existing=True)).one_or_none()
        if profile is None:
            raise NotFound(_no_profile())
        if seen is not None and profile.vetting_status != seen:
            raise Conflict(_("Någon annan ändrade värdens status till %(status)s medan du beslutade; se över "
                             "beslutet igen.", status=in_sentence("vetting_status", profile.vetting_status)),
                           code="state_changed", vetting_status=profile.vetting_status)
        if profile.vetting_status not in allowed_from:
            raise Conflict(_("En värd som är %(status)s kan inte få beslutet ”%(decision)s”.",
                             status=in_sentence("vetting_status", profile.vetting_status),
                             decision=in_sentence("vetting_decision", decision)),
                           code="invalid_transition", vetting_status=profile.vetting_status)
        before = _profile_facts(profile)
        profile.vetting_status = new_status
        profile.decided_at = now
        profile.decision_reason = reason
        if new_status == "approved" and profile.verified_since is None:
            profile.verified_since = now
        audit.record(actor, f"host.{decision}", "host", host_user_id, before=before,
                     after={**_profile_facts(profile), "reason": reason}, now=now)
        events.emit(events.HOST_DECIDED, profile=profile, decision=decision, reason=reason, now=now)
        if new_status == "suspended":
            events.emit(events.HOST_SUSPENDED, profile=profile, now=now)
    return profile


def live_bookings(host_user_id: int, *, now: datetime | None = None) -> list:
    """The host's live bookings (awaiting payment or confirmed, last night not passed), oldest stay first:
    what a suspension leaves standing, counted for the admin before deciding."""
    today = stockholm_today(now)
    return list(db.session.scalars(select(Booking).where(
        Booking.host_id == host_user_id, Booking.status.in_(("awaiting_payment", "confirmed")),
        Booking.check_out > today).order_by(Booking.check_in, Booking.id)))


@dataclass(frozen=True)
class SuspensionImpact:
    """What suspending a host leaves standing: its live bookings, and the coordinators who are told."""

    bookings: list  # live bookings, oldest stay first; their contracts stand, status unchanged
    told: list  # (booking, coordinator, delegation) for each confirmed one: that coordinator gets an e-mail


def suspension_impact(host_user_id: int, *, now: datetime | None = None) -> SuspensionImpact:
    """The live bookings a suspension of this host leaves standing, and who hears of it (one rule for the
    admin's confirmation page and the e-mails)."""
    bookings = live_bookings(host_user_id, now=now)
    told = []
    for booking in bookings:
        coordinator = db.session.get(User, booking.coordinator_id)
        if booking.status == "confirmed" and coordinator is not None:
            told.append((booking, coordinator, db.session.get(Delegation, booking.delegation_id)))
    return SuspensionImpact(bookings, told)


def strike_limit(now: datetime | None = None) -> int | None:
    """The strike limit of the current season."""
    season = current_season(now)
    return season.strike_limit if season is not None else None


def add_strike(actor: Actor, host_user_id: int, why: str, *, now: datetime) -> HostProfile:
    """Give a strike inside the caller's unit of work; suspend at the latest season's limit."""
    return give_strike(actor, host_user_id, why, now=now)[0]


def give_strike(actor: Actor, host_user_id: int, why: str, *, now: datetime) -> tuple[HostProfile, str | None]:
    """add_strike, also answering the host's status before the suspension this very strike caused (None: it
    caused none), decided under the profile's row lock, so that an overturned decision can restore it exactly."""
    # The counter moves in SQL: the UPDATE's row lock serialises parallel strikes of one host.
    strikes = db.session.execute(
        update(HostProfile).where(HostProfile.user_id == host_user_id)
        .values(strikes=HostProfile.strikes + 1).returning(HostProfile.strikes)
        .execution_options(synchronize_session=False)).scalar_one_or_none()
    if strikes is None:
        raise NotFound(_no_profile())
    profile = db.session.scalars(select(HostProfile).where(HostProfile.user_id == host_user_id)
                                 .execution_options(populate_existing=True)).one()
    audit.record(actor, "host.strike", "host", host_user_id, after={"strikes": strikes, "why": why}, now=now)
    limit = strike_limit(now)
    suspended_from = None
    if limit is not None and strikes >= limit and profile.vetting_status != "suspended":
        suspended_from = profile.vetting_status
        before = _profile_facts(profile)
        profile.vetting_status = "suspended"
        profile.decided_at = now
        profile.decision_reason = _("Automatisk avstängning: %(strikes)s prickningar (gränsen är %(limit)s).",
                                    strikes=strikes, limit=limit)
        audit.record(Actor.system(), "host.suspend", "host", host_user_id, before=before,
                     after=_profile_facts(profile), now=now)
        events.emit(events.HOST_SUSPENDED, profile=profile, now=now)
    return profile, suspended_from


def remove_strike(actor: Actor, host_user_id: int, why: str, *, restore_status: str | None,
                  now: datetime) -> HostProfile:
    """Take back one strike inside the caller's unit of work (the counter moves in SQL, never below 0) and, when
    that strike had suspended the host and they are still suspended, restore the status they had before."""
    strikes = db.session.execute(
        update(HostProfile).where(HostProfile.user_id == host_user_id, HostProfile.strikes > 0)
        .values(strikes=HostProfile.strikes - 1).returning(HostProfile.strikes)
        .execution_options(synchronize_session=False)).scalar_one_or_none()
    profile = db.session.scalars(select(HostProfile).where(HostProfile.user_id == host_user_id)
                                 .with_for_update().execution_options(populate_existing=True)).one()
    audit.record(actor, "host.strike_removed", "host", host_user_id,
                 after={"strikes": profile.strikes, "why": why, "removed": strikes is not None}, now=now)
    if restore_status is not None and profile.vetting_status == "suspended":
        before = _profile_facts(profile)
        profile.vetting_status = restore_status
        profile.decided_at = now
        profile.decision_reason = why
        audit.record(actor, "host.reinstate", "host", host_user_id, before=before, after=_profile_facts(profile),
                     now=now)
        events.emit(events.HOST_DECIDED, profile=profile, decision="reinstate", reason=why, now=now)
    return profile


def is_host_suspended(host_user_id: int) -> bool:
    status = db.session.scalar(select(HostProfile.vetting_status).where(HostProfile.user_id == host_user_id))
    return status == "suspended"


def is_host_approved(host_user_id: int) -> bool:
    status = db.session.scalar(select(HostProfile.vetting_status).where(HostProfile.user_id == host_user_id))
    return status == "approved"


def host_user(user_id: int) -> User | None:
    user = db.session.get(User, user_id)
    return user if user is not None and user.role == "host" else None


MAX_DOCUMENT_BYTES = MAX_UPLOAD_BYTES  # 5 MB
DOCUMENT_TYPES = {  # magic bytes -> (mime type, extension, accepted file name endings)
    b"%PDF-": ("application/pdf", "pdf", (".pdf",)),
    b"\x89PNG\r\n\x1a\n": ("image/png", "png", (".png",)),
    b"\xff\xd8\xff": ("image/jpeg", "jpg", (".jpg", ".jpeg")),
}


def attach_document(actor: Actor, filename: str, data: bytes, *, now: datetime | None = None) -> HostProfile:
    """Store the host's vetting document (PDF, JPEG or PNG, at most 5 MB) in the database; it replaces the last one."""
    now = now_or(now)
    if actor.role != "host":
        raise Forbidden(_("Bara värdar laddar upp granskningsdokument."))
    if not data:
        raise ValidationFailed({"document": [_("Välj en fil.")]})
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ValidationFailed({"document": [_("Filen är större än 5 MB.")]})
    kind = next((v for magic, v in DOCUMENT_TYPES.items() if data.startswith(magic)), None)
    name = (filename or "").strip().lower()
    if kind is None or not name.endswith(kind[2]):
        raise ValidationFailed({"document": [_("Ladda upp en PDF-, JPEG- eller PNG-fil vars innehåll stämmer med "
                                               "filnamnet.")]})
    with unit_of_work():
        profile = db.session.scalar(select(HostProfile).where(HostProfile.user_id == actor.user_id)
                                    .with_for_update())
        if profile is None:
            raise DomainError(_("Skicka först in dina uppgifter för granskning och bifoga sedan dokumentet."),
                              code="no_profile")
        upload = uploads.store("vetting_document", filename, kind[0], data, now=now)
        old = profile.document_id
        profile.document_id = upload.id
        profile.document_original_name = upload.filename
        db.session.flush()
        if old is not None:
            uploads.discard(old)  # a replaced document is not kept (the audit log keeps its hash)
        audit.record(actor, "host.document_uploaded", "host", actor.user_id,
                     after={"mime": kind[0], "bytes": len(data), "sha256": upload.sha256}, now=now)
    return profile


def document_for(actor: Actor, host_user_id: int) -> uploads.StoredFile:
    """A host's vetting document (bytes, type, download name): for that host and admins only."""
    profile = db.session.get(HostProfile, host_user_id)
    if profile is None or profile.document_id is None or not (actor.is_admin or actor.user_id == host_user_id):
        raise NotFound(_("Dokumentet finns inte."))
    return uploads.fetch(profile.document_id)
