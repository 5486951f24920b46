"""Accounts: registration, sign-in, API tokens, admins and two-factor."""
from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import pyotp
from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import ApiToken, AuditEntry, User
from app.services import audit, notifications
from app.services.base import Actor, now_or, unit_of_work
from app.services.errors import Conflict, DomainError, Forbidden, Unauthorized, ValidationFailed
from app.services.passwords import hash_password, password_problems, verify_password
from app.services.text import clean_text, phone_number

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

SELF_SERVICE_ROLES = ("host", "coordinator")
FAILED_LOGIN_LIMIT = 10
FAILED_LOGIN_WINDOW = timedelta(minutes=15)


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    title = _l("För många försök")


def normalise_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except (EmailNotValidError, AttributeError):
        raise ValidationFailed({"email": [_("Ange en giltig e-postadress, till exempel namn@exempel.se.")]}) from None


def _check_new_account(email: str, password: str, name: str) -> tuple[str, str]:
    errors: dict[str, list[str]] = {}
    try:
        email = normalise_email(email)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if problems := password_problems(password):
        errors["password"] = problems
    name = (name or "").strip()
    if not name or len(name) > 120:
        errors["name"] = [_("Ange ditt namn (högst 120 tecken).")]
    clean_text(name, "name", errors=errors)
    if errors:
        raise ValidationFailed(errors)
    return email, name


def register_user(email: str, password: str, name: str, role: str, *, locale: str = "sv",
                  ip: str | None = None, now: datetime | None = None) -> User:
    """Create a host or coordinator account."""
    if role not in SELF_SERVICE_ROLES:
        raise ValidationFailed({"role": [_("Rollen ska vara 'host' (värd) eller 'coordinator' (samordnare).")]})
    email, name = _check_new_account(email, password, name)
    return _create_user(email, password, name, role, locale=locale, ip=ip, now=now)


def create_admin(email: str, password: str, name: str, *, totp_secret: str | None = None,
                 now: datetime | None = None) -> User:
    """Create an admin (command line only), optionally already enrolled in two-factor."""
    email, name = _check_new_account(email, password, name)
    if totp_secret is not None:
        totp_secret = totp_secret.strip().replace(" ", "").upper()
        try:
            pyotp.TOTP(totp_secret).now()
        except Exception:  # pyotp raises binascii.Error / ValueError for a bad secret
            raise ValidationFailed({"totp_secret": [_("TOTP-hemligheten ska vara i base32.")]}) from None
    return _create_user(email, password, name, "admin", totp_secret=totp_secret, now=now)


def _create_user(email, password, name, role, *, locale="sv", totp_secret=None, ip=None, now=None) -> User:
    now = now_or(now)
    taken = Conflict(_("Det finns redan ett konto med den här e-postadressen."), code="email_taken")
    try:
        with unit_of_work():
            if db.session.scalar(select(User.id).where(User.email == email)) is not None:
                raise taken
            user = User(email=email, password_hash=hash_password(password), name=name, role=role,
                        locale=locale if locale in ("sv", "en") else "sv", totp_secret=totp_secret, created_at=now)
            db.session.add(user)
            db.session.flush()  # a parallel sign-up that committed first makes the unique index refuse here
            audit.record(Actor(user.id, role, ip), "user.created", "user", user.id,
                         after={"email": email, "role": role}, now=now)
    except IntegrityError:
        raise taken from None
    return user


def _failed_logins(email: str, now: datetime) -> list[datetime]:
    return list(db.session.scalars(
        select(AuditEntry.at).where(
            AuditEntry.action == "auth.login_failed",
            AuditEntry.object_type == "account",
            AuditEntry.object_id == email,
            AuditEntry.at > now - FAILED_LOGIN_WINDOW,
        ).order_by(AuditEntry.at)
    ))


def authenticate(email: str, password: str, *, otp: str | None = None, ip: str | None = None,
                 now: datetime | None = None, require_otp_for_admin: bool = True) -> User:
    """Check a sign-in. Ten failures for one account in 15 minutes lock it until the window passes."""
    now = now_or(now)
    email = (email or "").strip().lower()[:254]  # no account has a longer address (users.email is 254)
    failures = _failed_logins(email, now)
    if len(failures) >= FAILED_LOGIN_LIMIT:
        retry_after = int((failures[-FAILED_LOGIN_LIMIT] + FAILED_LOGIN_WINDOW - now).total_seconds()) + 1
        raise RateLimited(_("För många misslyckade inloggningar för det här kontot. Försök igen senare."),
                          retry_after=max(retry_after, 1))
    user = db.session.scalar(select(User).where(User.email == email))
    if not verify_password(user.password_hash if user else None, password or ""):
        audit.record_now(Actor(user.id if user else None, "public", ip), "auth.login_failed",
                         object_type="account", object_id=email, now=now)
        raise Unauthorized(_("Fel e-postadress eller lösenord."), code="invalid_credentials")
    assert user is not None  # verify_password refuses a missing hash  # nosec B101
    if user.role == "admin" and require_otp_for_admin:
        try:
            check_otp(user, otp, ip=ip, now=now)
        except Unauthorized as error:
            if error.code == "invalid_otp":  # a wrong or replayed code counts toward the lock-out
                audit.record_now(Actor(user.id, user.role, ip), "auth.login_failed",
                                 object_type="account", object_id=email, now=now)
            raise
    audit.record_now(Actor(user.id, user.role, ip), "auth.login", object_type="user", object_id=user.id, now=now)
    return user


def check_otp(user: User, otp: str | None, *, ip: str | None = None, now: datetime | None = None) -> None:
    """Demand a fresh TOTP code from an admin; each code is accepted once."""
    now = now_or(now)
    if not user.totp_secret:
        error = Forbidden(_("Administratörer måste aktivera tvåstegsverifiering (TOTP) innan de kan logga in."),
                          code="two_factor_enrolment_required")
        error.user_id = user.id  # for the sign-in page's enrolment step; never sent to clients
        raise error
    if otp is None or otp == "":
        raise Unauthorized(_("Ange den sexsiffriga koden från din autentiseringsapp."), code="otp_required")
    otp = str(otp).strip()
    if not (len(otp) == 6 and otp.isdigit()) and use_recovery_code(user.id, otp, ip=ip, now=now):
        return
    totp = pyotp.TOTP(user.totp_secret)
    counter = None
    if len(otp) == 6 and otp.isdigit():
        current = int(now.timestamp()) // 30
        for candidate in (current, current - 1, current + 1):
            if secrets.compare_digest(totp.generate_otp(candidate), otp):
                counter = candidate
                break
    with unit_of_work():
        # One atomic step: the row count of this conditional UPDATE decides, so of two requests with one
        # code (even at the same instant, on two workers) exactly one records the step and wins.
        won = counter is not None and cast("CursorResult[Any]", db.session.execute(
            update(User).where(User.id == user.id,
                               (User.totp_last_counter.is_(None)) | (User.totp_last_counter < counter))
            .values(totp_last_counter=counter).execution_options(synchronize_session=False)
        )).rowcount == 1  # an UPDATE's result is a CursorResult
        audit.record(Actor(user.id, user.role, ip), "auth.otp_ok" if won else "auth.otp_failed", "user", user.id,
                     now=now)
        failed = not won
    if failed:
        raise Unauthorized(_("Koden är fel eller redan använd. Vänta på nästa kod."), code="invalid_otp")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(user: User, *, ip: str | None = None, now: datetime | None = None) -> str:
    """Make an API token; only its hash is stored."""
    now = now_or(now)
    token = "sp_" + secrets.token_urlsafe(32)
    with unit_of_work():
        db.session.add(ApiToken(user_id=user.id, token_hash=hash_token(token),
                                token_version=user.token_version, created_at=now))
        audit.record(Actor(user.id, user.role, ip), "auth.token_issued", "user", user.id, now=now)
    return token


_USER_FOR_TOKEN = select(User).join(ApiToken, ApiToken.user_id == User.id).where(
    ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None),
    ApiToken.token_version == User.token_version)  # built once: it runs on every API request


def user_for_token(token: str) -> User | None:
    """The user of a live API token (not revoked, issued since the last password change)."""
    return db.session.scalar(_USER_FOR_TOKEN, {"token_hash": hash_token(token)})


def change_password(user_id: int, current_password: str, new_password: str, *, ip: str | None = None,
                    now: datetime | None = None) -> User:
    """Change a password; every other session and API token stops working."""
    now = now_or(now)
    user = db.session.get_one(User, user_id)
    if not verify_password(user.password_hash, current_password or ""):
        raise ValidationFailed({"current_password": [_("Det nuvarande lösenordet är fel.")]})
    return set_password(user_id, new_password, ip=ip, now=now)


def set_password(user_id: int, new_password: str, *, ip: str | None = None,
                 now: datetime | None = None) -> User:
    now = now_or(now)
    if problems := password_problems(new_password or ""):
        raise ValidationFailed({"password": problems})
    with unit_of_work():
        user = db.session.get_one(User, user_id)
        user.password_hash = hash_password(new_password)
        user.session_version += 1
        user.token_version += 1
        audit.record(Actor(user.id, user.role, ip), "auth.password_changed", "user", user.id, now=now)
    return user


def end_all_sessions(user_id: int, *, ip: str | None = None, now: datetime | None = None) -> None:
    """Sign out on the server: every session cookie issued so far stops working (API tokens stay)."""
    with unit_of_work():
        user = db.session.get_one(User, user_id)
        user.session_version += 1
        audit.record(Actor(user.id, user.role, ip), "auth.logout_everywhere", "user", user.id, now=now_or(now))


def set_locale(user_id: int, locale: str) -> None:
    if locale not in ("sv", "en"):
        raise ValidationFailed({"locale": [_("Välj 'sv' (svenska) eller 'en' (engelska).")]})
    with unit_of_work():
        db.session.get_one(User, user_id).locale = locale


def set_phone(actor: Actor, phone: str | None, *, now: datetime | None = None) -> User:
    """A coordinator sets (or with an empty value clears) the phone the host of a confirmed booking sees."""
    now = now_or(now)
    if actor.role != "coordinator":
        raise Forbidden(_("Bara samordnare anger sitt telefonnummer här; en värds nummer står i värdprofilen."))
    phone = phone_number(phone)
    with unit_of_work():
        user = db.session.get_one(User, actor.user_id)
        before, user.phone = user.phone, phone
        audit.record(actor, "user.phone_set", "user", user.id, before={"phone": before}, after={"phone": phone},
                     now=now)
    return user


def count_users() -> int:
    return db.session.execute(select(func.count(User.id))).scalar_one()


RECOVERY_CODES = 10


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name="Sängplats")


def enrol_totp(user_id: int, secret: str, code: str, *, ip: str | None = None,
               now: datetime | None = None) -> list[str]:
    """Turn on two-factor once the user proves the authenticator works; return one-time recovery codes."""
    now = now_or(now)
    code = (code or "").strip().replace(" ", "")
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // 30
    counter = next((c for c in (current, current - 1, current + 1)
                    if len(code) == 6 and secrets.compare_digest(totp.generate_otp(c), code)), None)
    if counter is None:
        raise ValidationFailed({"code": [_("Koden stämmer inte. Kontrollera klockan i telefonen och försök igen.")]})
    codes = [f"{secrets.token_hex(2)}-{secrets.token_hex(2)}" for _ in range(RECOVERY_CODES)]
    with unit_of_work():
        user = db.session.get_one(User, user_id)
        user.totp_secret = secret
        user.totp_last_counter = counter
        user.recovery_codes = json.dumps([hash_token(c) for c in codes])
        audit.record(Actor(user.id, user.role, ip), "auth.totp_enrolled", "user", user.id, now=now)
    return codes


def use_recovery_code(user_id: int, code: str, *, ip: str | None = None, now: datetime | None = None) -> bool:
    """Accept a recovery code once in place of a TOTP code."""
    digest = hash_token(code.strip().lower())
    with unit_of_work():
        # Locked and re-read: of two sign-ins with one recovery code at once, exactly one uses it.
        user = db.session.scalars(select(User).where(User.id == user_id).with_for_update()
                                  .execution_options(populate_existing=True)).one()
        remaining = json.loads(user.recovery_codes or "[]")
        if digest not in remaining:
            return False
        remaining.remove(digest)
        user.recovery_codes = json.dumps(remaining)
        audit.record(Actor(user.id, user.role, ip), "auth.recovery_code_used", "user", user.id,
                     after={"remaining": len(remaining)}, now=now_or(now))
    return True


RESET_MAX_AGE = timedelta(hours=1)


def _reset_serializer():
    from flask import current_app
    from itsdangerous import URLSafeTimedSerializer
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="password-reset")


def password_reset_token(user: User) -> str:
    """A signed link token; it dies in an hour and as soon as the password changes (single use)."""
    return _reset_serializer().dumps({"uid": user.id, "ph": hash_token(user.password_hash)[:16]})


def user_for_reset_token(token: str) -> User | None:
    from itsdangerous import BadSignature
    try:
        data = _reset_serializer().loads(token, max_age=int(RESET_MAX_AGE.total_seconds()))
    except BadSignature:
        return None
    user = db.session.get(User, data.get("uid")) if isinstance(data, dict) else None
    if user is None or hash_token(user.password_hash)[:16] != data.get("ph"):
        return None
    return user


def reset_password(token: str, new_password: str, *, ip: str | None = None,
                   now: datetime | None = None) -> User:
    """Set a new password from a reset link; the link cannot be used again."""
    user = user_for_reset_token(token)
    if user is None:
        raise DomainError(_("Länken är ogiltig, för gammal eller redan använd. Be om en ny."),
                          code="invalid_reset_token")
    return set_password(user.id, new_password, ip=ip, now=now)


def request_password_reset(email: str, *, reset_url: Callable[[str], str], ip: str | None = None,
                           now: datetime | None = None) -> None:
    """E-mail a reset link if the account exists (the answer is the same either way)."""
    now = now_or(now)
    address = (email or "").strip().lower()[:254]  # as long as users.email can be
    user = db.session.scalar(select(User).where(User.email == address))
    with unit_of_work():
        audit.record(Actor(user.id if user else None, "public", ip), "auth.password_reset_requested",
                     "account", address, now=now)
        if user is not None:
            notifications.queue_password_reset(user, reset_url(password_reset_token(user)), now=now)
