"""Command line for the e-mail outbox: `flask --app wsgi mail send` and `mail remind-holds` (e.g. from cron)."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from app.services.jobs import remind_expiring_holds
from app.services.mail import send_pending

mail_cli = AppGroup("mail", help="The e-mail outbox.")


@mail_cli.command("send")
def send() -> None:
    """Send the outbox's due messages (SMTP, or .eml files when MAIL_SERVER is empty)."""
    click.echo(f"Mail: {send_pending()}.")


@mail_cli.command("remind-holds")
def remind_holds() -> None:
    """Queue a reminder for each hold or waiting-list offer that expires within five minutes."""
    ids = remind_expiring_holds()
    click.echo(f"Queued {len(ids)} reminder(s){': ' + ', '.join(map(str, ids)) if ids else ''}.")
