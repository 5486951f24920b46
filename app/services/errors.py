"""Domain errors: a stable code, a user-facing message and the facts the user needs.

Messages are Swedish msgids translated when the error is raised (flask_babel's gettext), so each
entry point shows them in the language of the request; codes and facts never change with it.
"""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l


class DomainError(Exception):
    """A rule said no. Each entry point translates it: problem+json, a flash, a CLI message."""

    status = 422
    code = "domain_error"
    title = _l("Begäran avvisades")
    # Only a `two_factor_enrolment_required` error carries it (set by accounts.check_otp, read by the sign-in page).
    user_id: int | None

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None, **facts: Any):
        super().__init__(message)
        self.message = str(message)
        self.title = str(self.title)  # in the language of the moment the error was raised
        if code:
            self.code = code
        if status:
            self.status = status
        self.facts = facts


class ValidationFailed(DomainError):
    """Malformed input: field -> messages."""

    status = 422
    code = "invalid"
    title = _l("Ogiltiga uppgifter")

    def __init__(self, errors: dict[str, list[str]], message: str | None = None):
        errors = {field: [str(m) for m in messages] for field, messages in errors.items()}
        super().__init__(message or _("Några fält är felaktigt ifyllda."), errors=errors)
        self.errors = errors


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = _l("Hittades inte")


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = _l("Ingen behörighet")


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = _l("Konflikt")


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    title = _l("Inte inloggad")


class PaymentFailed(DomainError):
    status = 402
    code = "card_declined"
    title = _l("Betalningen misslyckades")


class Unavailable(DomainError):
    """The database cannot be reached: the API's 503 `unavailable`."""

    status = 503
    code = "unavailable"
    title = _l("Tjänsten är inte tillgänglig")


# SQLSTATE classes of a database that cannot be reached or is shutting down (not a deadlock or a timeout).
_UNREACHABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


def database_unreachable(error: BaseException | None) -> bool:
    """Whether `error` says the database cannot be reached at all (connection refused, lost or refused at log-in)."""
    from sqlalchemy import exc
    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, (exc.OperationalError, exc.InterfaceError)):
            orig = error.orig
            sqlstate = getattr(orig, "sqlstate", None)
            if sqlstate is not None:
                return sqlstate.startswith(_UNREACHABLE_SQLSTATES)
            message = str(orig).lower()
            if "database is locked" in message:
                return False
            return type(orig).__module__.startswith("psycopg") or "unable to open database" in message
        if isinstance(error, exc.DisconnectionError):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False
