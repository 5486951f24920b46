"""Command line: `flask --app wsgi ...`. Thin: every rule is in app/services.

One module per subject (accounts and demo data, holds, mail, payments and payouts, the worker); `register_cli`
adds every group to the app and makes each command answer one line while the database is down.
"""
from __future__ import annotations

import functools
from typing import Any

import click
from flask import Flask

from app.cli import accounts, allocation, holds, invoices, mail, payments, worker
from app.services.errors import database_unreachable

GROUPS: tuple[click.Group, ...] = (
    accounts.users_cli, accounts.demo_cli, holds.holds_cli, mail.mail_cli, payments.payments_cli, payments.payouts_cli,
    allocation.allocation_cli, invoices.invoices_cli)


def register_cli(app: Flask) -> None:
    """Add every command group to the app."""
    for group in GROUPS:
        app.cli.add_command(group)
    app.cli.add_command(worker.worker_command)
    _one_line_when_database_down(app.cli)


def _one_line_when_database_down(group: click.Group) -> None:
    """Every command of the app prints one line and exits 1 while the database cannot be reached."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _one_line_when_database_down(command)
            continue
        if command.callback is None or getattr(command.callback, "_db_guarded", False):
            continue
        command.callback = _guarded(command.callback)


def _guarded(callback: Any) -> Any:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except Exception as error:  # only the database being unreachable becomes one line
            if not database_unreachable(error):
                raise
            raise click.ClickException(f"The database cannot be reached: {_first_line(error)}") from None

    wrapped = functools.update_wrapper(guarded, callback)
    wrapped._db_guarded = True  # type: ignore[attr-defined]
    return wrapped


def _first_line(error: Exception) -> str:
    orig = getattr(error, "orig", None) or error
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0][:300]
