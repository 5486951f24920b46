"""Helpers shared by the HTML blueprints."""
from __future__ import annotations

from dataclasses import dataclass
from functools import wraps
from typing import TypeVar
from urllib.parse import urlsplit

from flask import abort, flash, request
from flask_login import current_user, login_required

from app.services.base import Actor
from app.services.errors import DomainError

T = TypeVar("T")


def actor() -> Actor:
    return Actor.of(current_user, ip=request.remote_addr)


def wants_json() -> bool:
    """The request asks for JSON (pay.js's fetch), not a page."""
    return request.accept_mimetypes.best == "application/json"


def local_path(target: str) -> str | None:
    """`target` when it is a path on this site, else None: a `next` address never leads elsewhere.

    Browsers read a backslash as a slash and drop tabs and newlines, so `/\\evil.example` and
    `/<tab>/evil.example` would both become `//evil.example`, another site.
    """
    if not target.startswith("/") or "\\" in target or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def role_required(*roles: str):
    """Signed in (else the login page) with one of these roles (else 403)."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def flash_error(error: DomainError, form=None) -> None:
    """Show a domain error next to its field when the form has it, else as a flash."""
    field_name = error.facts.get("field")
    errors = getattr(error, "errors", None)
    fields = form._fields if form is not None else {}  # the form's fields only, never one of its properties
    if form is not None and errors:
        on_form = {name: fields[name] for name in errors if name in fields}
        for name, field in on_form.items():
            field.errors = list(field.errors) + list(errors[name])
        if on_form:
            for message in (m for name in errors if name not in on_form for m in errors[name]):
                flash(message, "error")  # about a value the form names differently: shown, not lost
            return
    if field_name in fields:
        fields[field_name].errors = list(fields[field_name].errors) + [error.message]
        return
    flash(error.message, "error")


SEARCH_PAGE_SIZE = 20  # listings per page of the search pages


@dataclass(frozen=True)
class ResultPages:
    """Page numbers over a search's total, read by the `pager` macro like a Flask-SQLAlchemy pagination."""
    page: int
    total: int
    per_page: int = SEARCH_PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def prev_num(self) -> int:
        return self.page - 1

    @property
    def next_num(self) -> int:
        return self.page + 1


def required(value: T | None) -> T:
    """A field its form's validators required: present once the form validated (a request without it is bad)."""
    if value is None:
        abort(400)
    return value


def page_number() -> int:
    """The `page` query argument: a whole number from 1, anything else is the first page."""
    raw = request.args.get("page", "")
    return int(raw) if raw.isdigit() and 0 < int(raw) <= 100_000 else 1
