"""The published arithmetic of the allocation draw: a seed, its commitment, the rank order, and checking them.

Pure functions, no database: the draw uses them, and so does anyone verifying a published result (the
`allocation verify` command, the tests), so the rule exists once (API.md "The allocation round").

- The seed is 64 lowercase hex characters from `secrets`; its commitment is SHA-256 (hex) of those 64
  characters as ASCII, published from the moment the season has a round; the seed itself after the draw.
- The rank order is the order of SHA-256(seed + ":" + ref) (UTF-8, hex digest, ascending): rank 1 first.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SEED_PATTERN = re.compile(r"^[0-9a-f]{64}$")
REF_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,32}$")


def new_seed() -> str:
    """A fresh secret seed: 32 random bytes as 64 lowercase hex characters."""
    return secrets.token_hex(32)


def new_ref() -> str:
    """A random public reference for a request: 22 characters of [A-Za-z0-9_-] (128 bits)."""
    return secrets.token_urlsafe(16)


def commitment(seed: str) -> str:
    """SHA-256 (hex) of the seed's characters as ASCII."""
    return hashlib.sha256(seed.encode("ascii")).hexdigest()


def rank_digest(seed: str, ref: str) -> str:
    """The digest that places a request: SHA-256 of seed + ":" + ref (UTF-8), hex."""
    return hashlib.sha256(f"{seed}:{ref}".encode()).hexdigest()


def ranked(seed: str, refs: Iterable[str]) -> list[str]:
    """The refs in rank order (rank 1 first): ascending digest, ties (never seen: distinct refs) by ref."""
    return sorted(refs, key=lambda ref: (rank_digest(seed, ref), ref))


def ranks(seed: str, refs: Iterable[str]) -> dict[str, int]:
    """Each ref's rank, from 1."""
    return {ref: position for position, ref in enumerate(ranked(seed, refs), start=1)}


@dataclass
class Verification:
    """What checking a published draw found: the seed against its commitment, every rank against a recount."""

    commitment_matches: bool
    ranks_match: bool
    requests: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.commitment_matches and self.ranks_match


def verify(published: Mapping[str, Any]) -> Verification:
    """Check a published result (`GET /allocation/{year}/result`: seed, seed_commitment, draw [{ref, rank}])."""
    seed = str(published.get("seed") or "")
    problems: list[str] = []
    seed_ok = bool(SEED_PATTERN.match(seed))
    if not seed_ok:
        problems.append("the seed is not 64 lowercase hex characters")
    commitment_ok = commitment(seed) == str(published.get("seed_commitment") or "")
    if not commitment_ok:
        problems.append("SHA-256 of the seed differs from the published commitment")
    draw = list(published.get("draw") or [])
    refs = [str(entry.get("ref")) for entry in draw]
    unique = len(set(refs)) == len(refs)
    if not unique:
        problems.append("a ref appears more than once")
    expected = ranks(seed, refs)
    wrong = [f"ref {ref}: published rank {entry.get('rank')}, recomputed {expected.get(ref)}"
             for ref, entry in zip(refs, draw, strict=True) if expected.get(ref) != entry.get("rank")]
    return Verification(commitment_ok, seed_ok and unique and not wrong, len(draw), problems + wrong)
