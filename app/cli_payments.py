"""Command line for payments and payouts: `flask payments ...`, `flask payouts ...`. Thin over the services."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from app.services.errors import DomainError

payments_cli = AppGroup("payments", help="Card payments through Stripe.")
payouts_cli = AppGroup("payouts", help="The host payout ledger.")


def _fail(error: DomainError) -> None:
    details = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in (getattr(error, "errors", None) or {}).items())
    raise click.ClickException(f"{error.message} {details} ({error.code})".replace("  ", " "))


@payments_cli.command("reconcile")
def reconcile():
    """Compare open payments with Stripe, expire lapsed holds, retry failed events and refunds."""
    from app.services.jobs import reconcile as run
    report = run()
    for line in report.lines():
        click.echo(line)


@payments_cli.command("retry-refunds")
def retry_refunds():
    """Send pending refunds and retry failed ones."""
    from app.services.refunds import process_pending_refunds
    done = process_pending_refunds()
    click.echo(f"Refunds accepted by Stripe: {len(done)}{': ' + ', '.join(map(str, done)) if done else ''}.")


@payouts_cli.command("schedule")
def schedule():
    """Write the payout ledger up to now (stays 24 hours under way become payable)."""
    from app.services.payouts import sync_payouts
    click.echo(f"Payouts scheduled: {sync_payouts()}.")


@payouts_cli.command("due")
def due():
    """List the payouts that are due."""
    from app.services.payouts import due_payouts
    rows = due_payouts()
    for payout in rows:
        click.echo(f"{payout.id}\thost {payout.host_id}\tbooking {payout.booking_id}\t{payout.amount_ore} öre\t"
                   f"due {payout.due_at.isoformat()}")
    click.echo(f"{len(rows)} payout(s) due, {sum(p.amount_ore for p in rows)} öre in all.")


@payouts_cli.command("mark-paid")
@click.argument("payout_id", type=int)
@click.option("--reference", required=True, help="The bank transfer's reference.")
@click.option("--admin-email", required=True, help="The admin who sent the money.")
def mark_paid(payout_id, reference, admin_email):
    """Record that a due payout was sent to the host."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import User
    from app.services.base import Actor
    from app.services.payouts import mark_paid as record
    admin = db.session.scalar(select(User).where(User.email == admin_email.strip().lower(), User.role == "admin"))
    if admin is None:
        raise click.ClickException(f"No admin with the e-mail {admin_email}.")
    try:
        payout = record(Actor.of(admin), payout_id, reference)
    except DomainError as error:
        _fail(error)
    click.echo(f"Payout {payout.id} marked paid ({payout.amount_ore} öre, reference {payout.transfer_reference}).")


def register(app: Flask) -> None:
    for group in (payments_cli, payouts_cli):
        app.cli.add_command(group)
