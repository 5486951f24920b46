"""Command line for accounts and demo data: `flask users create-admin`, `flask demo seed`."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from app.cli.errors import fail
from app.services.accounts import create_admin as create
from app.services.demo import seed_demo
from app.services.errors import DomainError

users_cli = AppGroup("users", help="Manage accounts.")
demo_cli = AppGroup("demo", help="Demo data.")


@users_cli.command("create-admin")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--name", required=True)
@click.option("--totp-secret", default=None, help="Base32 secret: the admin is enrolled in two-factor already.")
def create_admin(email: str, password: str, name: str, totp_secret: str | None) -> None:
    """Make an admin account."""
    try:
        user = create(email, password, name, totp_secret=totp_secret)
    except DomainError as error:
        fail(error)
    click.echo(f"Admin {user.email} created (id {user.id}){' with two-factor' if totp_secret else ''}.")


@demo_cli.command("seed")
def seed() -> None:
    """Load a demo season, hosts, listings, a coordinator and an admin; print their logins."""
    env = current_app.config.get("APP_ENV")
    if env not in ("development", "testing"):
        raise click.ClickException(f"demo seed refuses to run in production (APP_ENV={env}).")
    try:
        logins = seed_demo()
    except DomainError as error:
        fail(error)
    click.echo(f"Demo data loaded. Sign in at {current_app.config['BASE_URL']}/login with:")
    for role, email, password, extra in logins:
        click.echo(f"  {role:<12} {email:<32} {password}{'  ' + extra if extra else ''}")
