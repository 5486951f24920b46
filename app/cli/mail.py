"""Command line for the e-mail outbox: `flask --app wsgi mail send` and `mail remind-holds` (the worker runs both;
these are the operator's one-shot commands)."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from app.services.jobs import remind_expiring_holds
from app.services.mail import send_pending

mail_cli = AppGroup("mail", help="The e-mail outbox.")


@mail_cli.command("send")
def send() -> None:
    """Send the outbox's due messages (SMTP; without MAIL_SERVER .eml files in development, else nothing)."""
    report = send_pending()
    if report.not_configured:
        raise click.ClickException(f"Mail: {report}.")
    click.echo(f"Mail: {report}.")


@mail_cli.command("remind-holds")
def remind_holds() -> None:
    """Queue a reminder for each hold or waiting-list offer that expires within five minutes."""
    ids = remind_expiring_holds()
    click.echo(f"Queued {len(ids)} reminder(s){': ' + ', '.join(map(str, ids)) if ids else ''}.")
