"""Shared pieces of the JSON API: body parsing, query parameters, token auth (problem+json is app.http_problems)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from functools import wraps
from typing import Any, Literal, TypeAlias, overload

from flask import g, request
from flask_babel import gettext as _

from app.http_problems import problem
from app.services import idempotency
from app.services.base import Actor
from app.services.errors import Forbidden, Unauthorized, ValidationFailed

# Ids and counts are 32-bit in the database; larger numbers are refused as invalid input, not a 500.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1

# Body's methods `str`, `int` and `bool` shadow the builtins inside its class body; its annotations use these.
_Str: TypeAlias = str
_Int: TypeAlias = int
_Bool: TypeAlias = bool
_Date: TypeAlias = date


def json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationFailed({"body": [_("Skicka ett JSON-objekt med Content-Type: application/json.")]})
    return data


class Body:
    """Typed reading of a JSON object; every problem is collected into one 422.

    A reader returns None for a missing or invalid field, and done() then raises. Callers use the values
    only after done(), so a required field (required=True, the default) is typed as present; an optional
    one may be None. Inside the class, `_Str` etc. name the types its methods shadow.
    """

    def __init__(self, data: dict[str, Any]):
        self.data = data
        self.errors: dict[str, list[str]] = {}

    def _get(self, name: _Str, required: _Bool) -> tuple[Any, _Bool]:
        if name not in self.data or self.data[name] is None:
            if required:
                self.errors.setdefault(name, []).append(_("Obligatoriskt."))
            return None, False
        return self.data[name], True

    @overload
    def str(self, name: _Str, required: Literal[True] = ..., max_length: _Int = ...) -> _Str: ...
    @overload
    def str(self, name: _Str, required: _Bool, max_length: _Int = ...) -> _Str | None: ...
    def str(self, name: _Str, required: _Bool = True, max_length: _Int = 10000) -> _Str | None:
        value, present = self._get(name, required)
        if not present:
            return None
        if not isinstance(value, str):
            self.errors.setdefault(name, []).append(_("Måste vara en sträng."))
            return None
        if len(value) > max_length:
            self.errors.setdefault(name, []).append(_("Högst %(max)s tecken.", max=max_length))
            return None
        return value

    @overload
    def int(self, name: _Str, required: Literal[True] = ..., minimum: _Int | None = ...,
            maximum: _Int | None = ...) -> _Int: ...
    @overload
    def int(self, name: _Str, required: _Bool, minimum: _Int | None = ...,
            maximum: _Int | None = ...) -> _Int | None: ...
    def int(self, name: _Str, required: _Bool = True, minimum: _Int | None = None,
            maximum: _Int | None = None) -> _Int | None:
        value, present = self._get(name, required)
        if not present:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not INT_MIN <= value <= INT_MAX:
            self.errors.setdefault(name, []).append(_("Måste vara ett heltal (32 bitar)."))
            return None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self.errors.setdefault(name, []).append(
                _("Måste vara mellan %(min)s och %(max)s.", min=minimum, max=maximum))
            return None
        return value

    @overload
    def bool(self, name: _Str, required: Literal[True] = ...) -> _Bool: ...
    @overload
    def bool(self, name: _Str, required: _Bool) -> _Bool | None: ...
    def bool(self, name: _Str, required: _Bool = True) -> _Bool | None:
        value, present = self._get(name, required)
        if not present:
            return None
        if not isinstance(value, bool):
            self.errors.setdefault(name, []).append(_("Måste vara true eller false."))
            return None
        return value

    @overload
    def date(self, name: _Str, required: Literal[True] = ...) -> date: ...
    @overload
    def date(self, name: _Str, required: _Bool) -> date | None: ...
    def date(self, name: _Str, required: _Bool = True) -> date | None:
        value = self.str(name, required, max_length=10)
        if value is None:
            return None
        try:
            return date.fromisoformat(value) if len(value) == 10 else _raise()
        except ValueError:
            self.errors.setdefault(name, []).append(_("Ett datum som ÅÅÅÅ-MM-DD."))
            return None

    @overload
    def datetime(self, name: _Str, required: Literal[True] = ...) -> datetime: ...
    @overload
    def datetime(self, name: _Str, required: _Bool) -> datetime | None: ...
    def datetime(self, name: _Str, required: _Bool = True) -> datetime | None:
        value = self.str(name, required, max_length=40)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            self.errors.setdefault(name, []).append(_("En tidpunkt enligt ISO 8601 med tidszon."))
            return None
        if parsed.tzinfo is None:
            self.errors.setdefault(name, []).append(_("Ange tidszon, till exempel +02:00."))
            return None
        return parsed

    @overload
    def int_list(self, name: _Str, required: Literal[True] = ..., max_items: _Int = ...) -> list[_Int]: ...
    @overload
    def int_list(self, name: _Str, required: _Bool, max_items: _Int = ...) -> list[_Int] | None: ...
    def int_list(self, name: _Str, required: _Bool = True, max_items: _Int = 500) -> list[_Int] | None:
        value, present = self._get(name, required)
        if not present:
            return None
        if (not isinstance(value, list) or len(value) > max_items
                or not all(isinstance(v, int) and not isinstance(v, bool) and INT_MIN <= v <= INT_MAX
                           for v in value)):
            self.errors.setdefault(name, []).append(_("En lista med högst %(max)s heltal.", max=max_items))
            return None
        return value

    def bed_nights(self, name: _Str, required: _Bool = True, max_items: _Int = 2000
                   ) -> list[tuple[_Int, _Date]] | None:
        """A list of {bed_id, night} objects (as POST /bookings/{id}/cancel and /report take), as (bed id, night)."""
        value, present = self._get(name, required)
        if not present:
            return None
        items = value if isinstance(value, list) and len(value) <= max_items else [None]
        lines = []
        for item in items:
            fields = item if isinstance(item, dict) and set(item) <= {"bed_id", "night"} else {}
            bed_id, night = fields.get("bed_id"), fields.get("night")
            try:
                parsed = date.fromisoformat(night) if isinstance(night, str) and len(night) == 10 else _raise()
            except ValueError:
                parsed = None
            if (not isinstance(bed_id, int) or isinstance(bed_id, bool) or not INT_MIN <= bed_id <= INT_MAX
                    or parsed is None):
                self.errors.setdefault(name, []).append(
                    _("En lista med högst %(max)s objekt {bed_id, night}: bed_id ett heltal, night ÅÅÅÅ-MM-DD.",
                      max=max_items))
                return None
            lines.append((bed_id, parsed))
        return lines

    def done(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)


def _raise():
    raise ValueError


def query_int(name: str, required: bool = False, errors: dict | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        if required and errors is not None:
            errors.setdefault(name, []).append(_("Obligatoriskt."))
        return None
    try:
        value = int(raw)
        if not INT_MIN <= value <= INT_MAX:
            raise ValueError
        return value
    except ValueError:
        if errors is not None:
            errors.setdefault(name, []).append(_("Måste vara ett heltal (32 bitar)."))
        return None


def query_date(name: str, errors: dict) -> date | None:
    raw = request.args.get(name)
    if not raw:
        errors.setdefault(name, []).append(_("Obligatoriskt, som ÅÅÅÅ-MM-DD."))
        return None
    try:
        if len(raw) != 10:
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        errors.setdefault(name, []).append(_("Ett datum som ÅÅÅÅ-MM-DD."))
        return None


def current_actor() -> Actor:
    user = g.get("api_user")
    if user is None:
        raise Unauthorized(_("Skicka Authorization: Bearer <token> (från POST /api/v1/tokens)."), code="unauthorized")
    return Actor.of(user, ip=request.remote_addr)


def roles(*allowed: str) -> Callable:
    """Require a token (401) of one of these roles (403)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            actor = current_actor()
            if allowed and actor.role not in allowed:
                raise Forbidden(_("Det här kräver rollen %(roles)s.", roles=_(" eller ").join(allowed)),
                                code="forbidden")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def answer_once(actor: Actor, values: dict, create: Callable[[], tuple[int, dict]]):
    """Answer a creating POST; with an `Idempotency-Key` header a repeat with the same key and body gets the first
    answer, status and body, and creates nothing (API.md)."""
    key = request.headers.get("Idempotency-Key")
    if not key:
        status, data = create()
        return data, status
    assert actor.user_id is not None  # a signed-in caller (roles)  # nosec B101
    status, data = idempotency.run(actor.user_id, key, values, create)
    if data.get("__error__"):
        return problem(status, data["code"], data["title"], data["message"], **data["facts"])
    return data, status
