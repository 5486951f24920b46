"""Domain errors: a stable code, a user-facing message and the facts the user needs."""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule said no. Each entry point translates it: problem+json, a flash, a CLI message."""

    status = 422
    code = "domain_error"
    title = "Request refused"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None, **facts: Any):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.facts = facts


class ValidationFailed(DomainError):
    """Malformed input: field -> messages."""

    status = 422
    code = "invalid"
    title = "Invalid input"

    def __init__(self, errors: dict[str, list[str]], message: str = "Some fields are invalid."):
        super().__init__(message, errors=errors)
        self.errors = errors


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class PaymentFailed(DomainError):
    status = 402
    code = "card_declined"
    title = "Payment failed"
