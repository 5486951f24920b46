"""How a command reports a refused action: one line on stderr, exit status 1."""
from __future__ import annotations

from typing import NoReturn

import click

from app.services.errors import DomainError, ValidationFailed


def fail(error: DomainError, *, with_code: bool = False) -> NoReturn:
    """Raise a ClickException with the error's message, its field details and its code.

    The code is left off field errors unless `with_code` (the payout commands have always shown it).
    """
    details = ""
    if isinstance(error, ValidationFailed):
        details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.errors.items())
        if not with_code:
            raise click.ClickException(f"{error.message} {details}")
    raise click.ClickException(f"{error.message} {details} ({error.code})".replace("  ", " "))
