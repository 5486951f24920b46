"""Command line: `flask --app wsgi ...`. Thin: every rule is in app/services."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from app.services.errors import DomainError, ValidationFailed

users_cli = AppGroup("users", help="Manage accounts.")
demo_cli = AppGroup("demo", help="Demo data.")
holds_cli = AppGroup("holds", help="Unpaid card holds.")


def _fail(error: DomainError) -> None:
    if isinstance(error, ValidationFailed):
        details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.errors.items())
        raise click.ClickException(f"{error.message} {details}")
    raise click.ClickException(f"{error.message} ({error.code})")


@users_cli.command("create-admin")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--name", required=True)
@click.option("--totp-secret", default=None, help="Base32 secret: the admin is enrolled in two-factor already.")
def create_admin(email, password, name, totp_secret):
    """Make an admin account."""
    from app.services.accounts import create_admin as create
    try:
        user = create(email, password, name, totp_secret=totp_secret)
    except DomainError as error:
        _fail(error)
    click.echo(f"Admin {user.email} created (id {user.id}){' with two-factor' if totp_secret else ''}.")


@demo_cli.command("seed")
def seed():
    """Load a demo season, hosts, listings, a coordinator and an admin; print their logins."""
    from flask import current_app

    from app.services.demo import seed_demo
    if current_app.config.get("APP_ENV") not in ("development", "testing"):
        raise click.ClickException(f"demo seed refuses to run in production (APP_ENV={current_app.config.get('APP_ENV')}).")
    try:
        logins = seed_demo()
    except DomainError as error:
        _fail(error)
    click.echo("Demo data loaded. Sign in at http://127.0.0.1:5000/login with:")
    for role, email, password, extra in logins:
        click.echo(f"  {role:<12} {email:<32} {password}{'  ' + extra if extra else ''}")


@holds_cli.command("expire")
def expire():
    """Expire unpaid holds past their time."""
    from app.services.jobs import expire_and_cancel
    ids = expire_and_cancel()
    click.echo(f"Expired {len(ids)} hold(s){': ' + ', '.join(map(str, ids)) if ids else ''}.")


def register_cli(app: Flask) -> None:
    for group in (users_cli, demo_cli, holds_cli):
        app.cli.add_command(group)
    __import__("app.cli_mail", fromlist=["register"]).register(app)
    __import__("app.cli_payments", fromlist=["register"]).register(app)
    _one_line_when_database_down(app.cli)


def _one_line_when_database_down(group: click.Group) -> None:
    """Every command of the app prints one line and exits 1 while the database cannot be reached."""
    import functools

    from app.services.errors import database_unreachable
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _one_line_when_database_down(command)
            continue
        if command.callback is None or getattr(command.callback, "_db_guarded", False):
            continue

        def guarded(*args, __callback=command.callback, **kwargs):
            try:
                return __callback(*args, **kwargs)
            except Exception as error:  # only the database being unreachable becomes one line
                if not database_unreachable(error):
                    raise
                raise click.ClickException(f"The database cannot be reached: {_first_line(error)}") from None
        guarded._db_guarded = True
        command.callback = functools.update_wrapper(guarded, command.callback)


def _first_line(error: Exception) -> str:
    orig = getattr(error, "orig", None) or error
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0][:300]
