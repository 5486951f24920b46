"""Command line for the allocation round: `flask allocation draw|draw-due|verify`. Thin over the services."""
from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup

from app.cli.errors import fail
from app.services import allocation, lottery
from app.services.errors import DomainError

allocation_cli = AppGroup("allocation", help="The allocation round: the draw and its verification.")


@allocation_cli.command("draw")
@click.option("--year", type=int, required=True, help="The season's year.")
def draw(year: int) -> None:
    """Run the season's draw (from allocation_at on), or complete an interrupted one; a second run changes nothing."""
    try:
        report = allocation.draw(year)
    except DomainError as error:
        fail(error, with_code=True)
    for line in report.lines():
        click.echo(line)


@allocation_cli.command("draw-due")
def draw_due() -> None:
    """Draw every season whose allocation_at has passed and is not drawn yet (what the worker runs)."""
    reports = allocation.draw_due()
    for report in reports:
        for line in report.lines():
            click.echo(line)
    if not reports:
        click.echo("No draw is due.")


@allocation_cli.command("verify")
@click.option("--year", type=int, help="The season's year: check the result Sängplats publishes for it.")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Check a saved copy of GET /api/v1/allocation/{year}/result instead.")
def verify(year: int | None, path: Path | None) -> None:
    """Recompute the ranks from the published seed and refs, and check the seed against its commitment."""
    if (year is None) == (path is None):
        raise click.UsageError("Give --year or --file.")
    if path is not None:
        try:
            published = json.loads(path.read_text("utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise click.ClickException(f"{path} is not a JSON document: {error}") from None
    else:
        assert year is not None  # nosec B101
        try:
            published = allocation.result(year)
        except DomainError as error:
            fail(error, with_code=True)
    checked = lottery.verify(published)
    click.echo(f"Seed: {published.get('seed')}")
    click.echo(f"SHA-256 of the seed {'matches' if checked.commitment_matches else 'does NOT match'} the commitment "
               f"{published.get('seed_commitment')}.")
    click.echo(f"Ranks of {checked.requests} request(s) recomputed from SHA-256(seed + ':' + ref): "
               f"{'all match' if checked.ranks_match else 'MISMATCH'}.")
    for problem in checked.problems:
        click.echo(f"  {problem}")
    if not checked.ok:
        raise click.exceptions.Exit(1)
    click.echo("The published draw verifies.")
