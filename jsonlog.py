"""Logs as JSON lines: time, level, logger, message, and inside a request its id, method, route, path and user id.

`configure(level)` puts one JSON handler on the root logger (stderr, looked up at each write), once per process;
every module keeps logging through `logging.getLogger(__name__)`. Under gunicorn, deploy/gunicorn.conf.py installs
the same handler before the app loads (so `configure` finds it) and `AccessJsonFormatter` for the access log.

It lives outside the `app` package on purpose: gunicorn's master loads it for its log configuration, and a master
that had imported `app` would hand that old code to every worker it forks, so a reload (HUP) would not load new
code. Flask is only imported once a request exists (the master never has one).
"""
from __future__ import annotations

import logging
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

FIELDS = "%(levelname)s %(name)s %(message)s"
RENAMED = {"levelname": "level", "name": "logger"}
# Loggers whose INFO lines say nothing to an operator (Alembic's plugin set-up at each start of the app).
QUIET = ("alembic.runtime.plugins",)
# The WSGI environ keys the app fills in after each request, for gunicorn's access log.
ENVIRON_USER_ID = "sangplats.user_id"
ENVIRON_ROUTE = "sangplats.route"


class RequestContext(logging.Filter):
    """Adds request_id, method, route, path and user_id to a record made inside a request (nothing outside one).

    The user is the one this request already loaded (a page's signed-in user, an API token's user): a log line never
    asks the database who is signed in."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "flask" not in sys.modules:  # no Flask, no request (gunicorn's master)
            return True
        from flask import g, has_request_context, request
        if not has_request_context():
            return True
        record.request_id = g.get("request_id")
        record.method = request.method
        record.route = request.endpoint
        record.path = request.path
        record.user_id = current_user_id()
        return True


def current_user_id() -> int | None:
    """The request's user id, read without touching the database: a log line may be written while the request's
    session waits inside a transaction (a row lock), and loading an expired attribute there would query through
    another connection behind that lock and hang the worker (the gunicorn order race found it)."""
    from flask import g
    for user in (g.get("_login_user"), g.get("api_user")):  # Flask-Login's user of this request, the API's
        identity = _identity(user)
        if identity is not None:
            return identity
    return None


def _identity(user: Any) -> int | None:
    """An ORM instance's primary key from its identity (no load, even when expired); None for anyone else."""
    if user is None:
        return None
    from sqlalchemy import inspect
    from sqlalchemy.exc import NoInspectionAvailable
    try:
        key = inspect(user).identity
    except NoInspectionAvailable:  # Flask-Login's anonymous user
        return None
    return key[0] if key else None


def json_formatter() -> JsonFormatter:
    return JsonFormatter(FIELDS, rename_fields=RENAMED, timestamp="time", json_ensure_ascii=False)


class JsonStderrHandler(logging.StreamHandler):
    """JSON lines to the current sys.stderr (looked up at each write, like logging's last resort handler)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(json_formatter())
        self.addFilter(RequestContext())

    @property  # the stream is whatever sys.stderr is now
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(level: str | int = "INFO") -> None:
    """One JSON handler on the root logger at `level` (idempotent: a second call only sets the level)."""
    root = logging.getLogger()
    if not any(isinstance(handler, JsonStderrHandler) for handler in root.handlers):
        for handler in list(root.handlers):
            if type(handler) is logging.StreamHandler and getattr(handler, "stream", None) in (sys.stderr,
                                                                                               sys.stdout):
                root.removeHandler(handler)  # a plain console handler would print every line twice
        root.addHandler(JsonStderrHandler())
    root.setLevel(level_of(level))
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, level_of(level)))


def level_of(value: str | int) -> int:
    """A level by name (DEBUG, INFO, WARNING, ERROR) or number; INFO for a name logging does not know."""
    if isinstance(value, int):
        return value
    named = logging.getLevelName(str(value).strip().upper())
    return named if isinstance(named, int) else logging.INFO


class AccessJsonFormatter(JsonFormatter):
    """gunicorn's access log as JSON: the usual combined line as `message`, and its parts as fields."""

    ATOMS = {  # field: gunicorn's atom
        "remote_addr": "h", "forwarded_for": "{x-forwarded-for}i", "method": "m", "path": "U", "query": "q",
        "status": "s", "bytes": "B",
        "duration_us": "D", "referer": "f", "user_agent": "a", "request_id": "{x-request-id}o",
        "user_id": "{" + ENVIRON_USER_ID + "}e", "route": "{" + ENVIRON_ROUTE + "}e",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", RENAMED)
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__(FIELDS, **kwargs)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        atoms = record.args
        if not hasattr(atoms, "__getitem__") or isinstance(atoms, tuple):
            return
        for field, atom in self.ATOMS.items():
            value = atoms[atom]  # type: ignore[index]  # gunicorn's SafeAtoms, a dict that answers "-" when missing
            if value in ("-", None, ""):
                continue
            if field in ("status", "bytes", "duration_us", "user_id"):
                try:
                    value = int(str(value))
                except (TypeError, ValueError):
                    pass
            log_data[field] = value
