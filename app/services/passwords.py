"""Password hashing (argon2id) and the password policy."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, has_app_context
from flask_babel import gettext as _

MIN_LENGTH = 10


@lru_cache(maxsize=4)
def _hasher_for(cost: tuple[tuple[str, int], ...]) -> tuple[PasswordHasher, str]:
    """The hasher for these argon2 cost parameters, and a dummy hash of the same cost: verified against when an
    account is unknown, so that both paths cost the same."""
    params: dict[str, Any] = dict(cost)
    hasher = PasswordHasher(**params)
    return hasher, hasher.hash("sängplats-dummy-password")


def _hasher() -> tuple[PasswordHasher, str]:
    """argon2id with the library's current recommended parameters, unless the app's config names cheaper ones
    (PASSWORD_HASH_COST, set only by TestingConfig: the tests hash thousands of passwords). A stored hash carries
    its own parameters, so verifying never depends on this choice."""
    cost = current_app.config.get("PASSWORD_HASH_COST") if has_app_context() else None
    return _hasher_for(tuple(sorted((cost or {}).items())))


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    path = Path(__file__).resolve().parent.parent / "data" / "common_passwords.txt"
    return frozenset(line.strip().lower() for line in path.read_text("utf-8").splitlines() if line.strip())


def password_problems(password: str) -> list[str]:
    """The reasons a password is refused (empty when it is acceptable)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(_("Lösenordet måste ha minst %(min)s tecken.", min=MIN_LENGTH))
    if password.lower() in _common_passwords():
        problems.append(_("Lösenordet är för vanligt; välj ett annat."))
    return problems


def hash_password(password: str) -> str:
    return _hasher()[0].hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    hasher, dummy_hash = _hasher()
    try:
        return hasher.verify(password_hash or dummy_hash, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
