"""An independent model of the allocation draw, for the tests: brute force over every set of free beds.

It knows nothing of `proposals.best_choice` or `FreeBeds`: it tries every combination of exactly N eligible free
beds, ranks each by the rule API.md states (most beds in the preferred listings, then, tied, most in the first
preferred listing, the second, ...; then fewest listings; then lowest total), and replays the draw in rank order.
`check_draw` asserts that a draw's decisions are exactly what greedy-in-rank-order allows: every allocated request
got an optimal choice among the beds still free at its turn (so nothing is double-booked and all of its beds, or
none, are taken), and every unallocated one had no feasible choice at its turn (so no later-ranked request took
beds that would have satisfied it).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations


@dataclass(frozen=True)
class ModelBed:
    bed_id: int
    listing_id: int
    price_ore: int  # per night
    walking_minutes: int


@dataclass(frozen=True)
class Want:
    """A request as the model sees it: nights as numbers (any consistent numbering), limits, preferences."""

    rank: int
    beds: int
    nights: frozenset[int]
    max_listings: int
    max_walking_minutes: int | None = None
    max_price_ore: int | None = None
    preferred: tuple[int, ...] = ()


@dataclass
class Decision:
    want: Want
    allocated: bool
    bed_ids: list[int] = field(default_factory=list)


def eligible(bed: ModelBed, want: Want) -> bool:
    return ((want.max_walking_minutes is None or bed.walking_minutes <= want.max_walking_minutes)
            and (want.max_price_ore is None or bed.price_ore <= want.max_price_ore))


def key_of(chosen: Sequence[ModelBed], want: Want) -> tuple:
    """Smaller is better, as API.md ranks the feasible choices."""
    per_listing: dict[int, int] = {}
    for bed in chosen:
        per_listing[bed.listing_id] = per_listing.get(bed.listing_id, 0) + 1
    preferred = list(dict.fromkeys(want.preferred))
    vector = tuple(per_listing.get(listing_id, 0) for listing_id in preferred)
    return (-sum(vector), tuple(-n for n in vector), len(per_listing), sum(bed.price_ore for bed in chosen))


def best_key(free: Iterable[ModelBed], want: Want) -> tuple | None:
    """The best key over every set of exactly `want.beds` eligible free beds from at most max_listings listings."""
    pool = [bed for bed in free if eligible(bed, want)]
    best = None
    for chosen in combinations(pool, want.beds):
        if len({bed.listing_id for bed in chosen}) > want.max_listings:
            continue
        key = key_of(chosen, want)
        if best is None or key < best:
            best = key
    return best


def check_draw(beds: dict[int, ModelBed], occupied: dict[int, set[int]], decisions: list[Decision]) -> None:
    """Replay the decisions in rank order against the model; raise AssertionError at the first that differs."""
    taken = {bed_id: set(nights) for bed_id, nights in occupied.items()}
    for bed_id in beds:
        taken.setdefault(bed_id, set())
    decisions = sorted(decisions, key=lambda decision: decision.want.rank)
    for position, decision in enumerate(decisions):
        want = decision.want
        free = [bed for bed in beds.values() if not taken[bed.bed_id] & want.nights]
        best = best_key(free, want)
        if not decision.allocated:
            assert not decision.bed_ids, f"rank {want.rank}: unallocated but holds beds {decision.bed_ids}"
            assert best is None, f"rank {want.rank} was left out although {best} was free at its turn"
            # The greedy rule as the issue states it: no later-ranked request took beds that would have served it.
            for later in decisions[position + 1:]:
                if later.allocated:
                    theirs = [beds[bed_id] for bed_id in later.bed_ids
                              if not taken[bed_id] & want.nights]
                    assert best_key(theirs, want) is None, \
                        f"rank {later.want.rank} took beds that would have served rank {want.rank}"
            continue
        chosen = [beds[bed_id] for bed_id in decision.bed_ids]
        assert len(set(decision.bed_ids)) == len(decision.bed_ids) == want.beds, \
            f"rank {want.rank}: {len(decision.bed_ids)} beds for a request of {want.beds} (all or nothing)"
        for bed in chosen:
            assert not taken[bed.bed_id] & want.nights, f"rank {want.rank}: bed {bed.bed_id} double-booked"
            assert eligible(bed, want), f"rank {want.rank}: bed {bed.bed_id} outside its limits"
        assert len({bed.listing_id for bed in chosen}) <= want.max_listings
        assert key_of(chosen, want) == best, f"rank {want.rank}: chose {key_of(chosen, want)}, best was {best}"
        for bed in chosen:
            taken[bed.bed_id] |= want.nights
