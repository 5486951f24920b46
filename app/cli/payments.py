"""Command line for payments and payouts: `flask payments ...`, `flask payouts ...`. Thin over the services."""
from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.cli.errors import fail
from app.extensions import db
from app.models import User
from app.services import jobs, payouts, refunds
from app.services.base import Actor
from app.services.errors import DomainError

payments_cli = AppGroup("payments", help="Card payments through Stripe.")
payouts_cli = AppGroup("payouts", help="The host payout ledger.")


@payments_cli.command("reconcile")
def reconcile() -> None:
    """Compare open payments with Stripe, expire lapsed holds, retry failed events and refunds."""
    report = jobs.reconcile()
    for line in report.lines():
        click.echo(line)


@payments_cli.command("retry-refunds")
def retry_refunds() -> None:
    """Send pending refunds and retry failed ones."""
    done = refunds.process_pending_refunds()
    click.echo(f"Refunds accepted by Stripe: {len(done)}{': ' + ', '.join(map(str, done)) if done else ''}.")


@payouts_cli.command("schedule")
def schedule() -> None:
    """Write the payout ledger up to now (stays 24 hours under way become payable)."""
    click.echo(f"Payouts scheduled: {payouts.sync_payouts()}.")


@payouts_cli.command("due")
def due() -> None:
    """List the payouts that are due."""
    rows = payouts.due_payouts()
    for payout in rows:
        click.echo(f"{payout.id}\thost {payout.host_id}\tbooking {payout.booking_id}\t{payout.amount_ore} öre\t"
                   f"due {payout.due_at.isoformat()}")
    click.echo(f"{len(rows)} payout(s) due, {sum(p.amount_ore for p in rows)} öre in all.")


@payouts_cli.command("mark-paid")
@click.argument("payout_id", type=int)
@click.option("--reference", required=True, help="The bank transfer's reference.")
@click.option("--admin-email", required=True, help="The admin who sent the money.")
def mark_paid(payout_id: int, reference: str, admin_email: str) -> None:
    """Record that a due payout was sent to the host."""
    admin = db.session.scalar(select(User).where(User.email == admin_email.strip().lower(), User.role == "admin"))
    if admin is None:
        raise click.ClickException(f"No admin with the e-mail {admin_email}.")
    try:
        payout = payouts.mark_paid(Actor.of(admin), payout_id, reference)
    except DomainError as error:
        fail(error, with_code=True)
    click.echo(f"Payout {payout.id} marked paid ({payout.amount_ore} öre, reference {payout.transfer_reference}).")
