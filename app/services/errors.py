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
