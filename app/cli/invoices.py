"""Command line for the invoice ledger: `flask invoices import-bgmax FILE`, `flask invoices remind`."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from app.cli.errors import fail
from app.i18n import kr
from app.services import invoices
from app.services.errors import DomainError

invoices_cli = AppGroup("invoices", help="Invoices: bank files from Bankgirot and reminders.")


@invoices_cli.command("import-bgmax")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_bgmax(path: Path) -> None:
    """Record the payments of a Bankgirot BgMax file by their OCR references (importing twice pays once)."""
    content = path.read_bytes().decode("iso-8859-1")
    try:
        report = invoices.import_bgmax(content)
    except DomainError as exc:
        fail(exc)
    for number, reference, amount in report.recorded:
        click.echo(f"recorded   {number}  OCR {reference}  {kr(amount, 'sv')}")
    for number, reference, amount in report.already:
        click.echo(f"already    {number}  OCR {reference}  {kr(amount, 'sv')} (imported before, not paid again)")
    for reference, amount, serial in report.unknown:
        click.echo(f"unknown    reference {reference or '(none)'!s}  {kr(amount, 'sv')}  BGC {serial}: left alone")
    for kind, reference, amount, serial in report.not_recorded:
        click.echo(f"deduction  TK{kind} reference {reference or '(none)'}  {kr(amount, 'sv')}  BGC {serial}: "
                   "for the bookkeeper")
    click.echo(f"Payments recorded: {len(report.recorded)}, already recorded: {len(report.already)}, "
               f"unknown references: {len(report.unknown)}, deductions not recorded: {len(report.not_recorded)}.")


@invoices_cli.command("remind")
def remind() -> None:
    """Send reminders for overdue invoices; cancel invoice bookings left unpaid past the season's terms."""
    done = invoices.remind_due()
    click.echo(f"Reminders sent: {len(done['reminded'])}"
               f"{': ' + ', '.join(done['reminded']) if done['reminded'] else ''}.")
    click.echo(f"Cancelled unpaid: {len(done['cancelled'])}"
               f"{': ' + ', '.join(done['cancelled']) if done['cancelled'] else ''}.")
