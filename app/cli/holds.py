"""Command line for unpaid card holds: `flask holds expire` (the worker runs it; this is the one-shot command)."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from app.services import rehousing
from app.services.jobs import expire_and_cancel

holds_cli = AppGroup("holds", help="Unpaid card holds.")


@holds_cli.command("expire")
def expire() -> None:
    """Expire unpaid holds past their time."""
    ids = expire_and_cancel()
    click.echo(f"Expired {len(ids)} hold(s){': ' + ', '.join(map(str, ids)) if ids else ''}.")


@holds_cli.command("lapse-rehousing")
def lapse_rehousing() -> None:
    """Release rehousing offers past their 48 hours."""
    count = rehousing.lapse_due()
    click.echo(f"Released {count} rehousing offer booking(s).")
