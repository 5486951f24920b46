"""Group proposals: N beds for a delegation's stay, spread over as few listings as possible, then cheapest.

The database does the wide part (per listing: its beds free every night, ranked by price, only the
cheapest N of each sent); a small branch and bound in Python chooses the sets of listings.

The allocation draw asks for one choice per request, with preferred listings first (`best_choice`), from the
season's beds held in memory (`FreeBeds`): one query for the whole draw instead of one search per request.
"""
from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import combinations
from typing import NamedTuple

from flask_babel import gettext as _
from sqlalchemy import select

from app.extensions import db
from app.models import Season
from app.services.availability import bookable_beds, checked_season, free_beds_query, occupied_nights
from app.services.base import now_or
from app.services.errors import ValidationFailed

MAX_PROPOSALS = 5
MAX_LISTINGS = 5  # parts of one proposal, at most (the search is exponential in it)
# Steps of the branch and bound per size of set, once it holds at least one set. Near-equal prices over
# many listings defeat the bound (40 beds from 5 of 1,250 listings priced within 0.02 % of each other took
# 79 s); past the budget the search answers the cheapest sets it has found, which are still exact N free
# beds from the fewest listings, only perhaps not the cheapest such sets.
SEARCH_STEPS = 10_000
DEFAULT_LISTINGS = 3


class Offer(NamedTuple):
    """One listing's free beds for the stay: the cheapest first, at most N of them. (A tuple: the draw makes one for
    each listing for each request, and a frozen dataclass costs several times as much to make.)"""
    listing_id: int
    title: str
    walking_minutes: int
    bed_ids: tuple[int, ...]
    prices: tuple[int, ...]  # per bed and night, ascending, matching bed_ids


@dataclass(frozen=True)
class Part:
    listing_id: int
    title: str
    walking_minutes: int
    bed_ids: list[int]
    total_ore: int


@dataclass(frozen=True)
class Proposal:
    parts: list[Part]
    total_ore: int
    max_walking_minutes: int


def propose(year: int, check_in: date, check_out: date, beds: int, *, max_walking_minutes: int | None = None,
            max_price_ore: int | None = None, max_listings: int = DEFAULT_LISTINGS,
            now: datetime | None = None) -> list[Proposal]:
    """Up to five ways to take exactly `beds` free beds from at most `max_listings` listings, fewest listings first."""
    if not 1 <= max_listings <= MAX_LISTINGS:
        raise ValidationFailed({"max_listings": [_("Mellan 1 och %(max)s.", max=MAX_LISTINGS)]})
    now = now_or(now)
    season, nights = checked_season(year, check_in, check_out, beds, now)
    free = free_beds_query(season, check_in, check_out, now, max_walking_minutes=max_walking_minutes,
                           max_price_ore=max_price_ore)
    rows = db.session.connection().execute(
        select(free.c.listing_id, free.c.title, free.c.walking_minutes, free.c.bed_id, free.c.price_ore)
        .where(free.c.price_rank <= beds)
        .order_by(free.c.listing_id, free.c.price_rank)).all()
    return proposals_from(offers_from_rows(rows), beds, max_listings, nights)


def offers_from_rows(rows) -> list[Offer]:
    """Group (listing_id, title, walking_minutes, bed_id, price_ore) rows, in price order, into offers."""
    grouped: dict[int, tuple[str, int, list[int], list[int]]] = {}
    for listing_id, title, walking, bed_id, price in rows:
        entry = grouped.setdefault(listing_id, (title, walking, [], []))
        entry[2].append(bed_id)
        entry[3].append(price)
    return [Offer(lid, title, walking, tuple(bed_ids), tuple(prices))
            for lid, (title, walking, bed_ids, prices) in grouped.items()]


def proposals_from(offers: list[Offer], beds: int, max_listings: int, nights: int) -> list[Proposal]:
    """The best (fewest listings, then lowest total) distinct sets of listings holding exactly `beds` beds."""
    chosen = best_sets(offers, beds, max_listings, MAX_PROPOSALS)
    return [_proposal([offers[i] for i in indexes], beds, nights) for indexes in chosen]


def best_sets(offers: list[Offer], beds: int, max_listings: int, wanted: int,
              steps: int = SEARCH_STEPS) -> list[tuple[int, ...]]:
    """Indexes into `offers` of the `wanted` best sets, ordered by size, then total, then listing ids."""
    found: list[tuple[int, int, tuple[int, ...]]] = []
    for size in range(1, min(max_listings, beds) + 1):
        if len(found) >= wanted:
            break
        pool = _candidates(offers, beds, wanted - len(found) + size - 1)
        pool.sort(key=lambda i: (offers[i].prices[0], offers[i].listing_id))
        for total, indexes in _cheapest_of_size([offers[i] for i in pool], beds, size, wanted - len(found),
                                                steps):
            found.append((size, total, tuple(sorted(pool[i] for i in indexes))))
    found.sort(key=lambda item: (item[0], item[1], sorted(offers[i].listing_id for i in item[2])))
    return [indexes for _size, _total, indexes in found]


def _candidates(offers: list[Offer], beds: int, rivals: int) -> list[int]:
    """The offers that can be part of a best set: for some bed count k, among the `rivals` cheapest for k beds.

    A listing giving k beds to a set, with `rivals` (wanted + size - 1) others cheaper for k beds, cannot
    be in the wanted best sets: swapping it for each rival outside the set gives `wanted` distinct cheaper
    sets of the same size. So the search looks only at these few offers, whatever the island's size.
    """
    picked: set[int] = set()
    costs = [0] * len(offers)
    for k in range(1, beds + 1):
        able = [i for i in range(len(offers)) if len(offers[i].prices) >= k]
        if not able:
            break
        for i in able:
            costs[i] += offers[i].prices[k - 1]
        if len(able) <= rivals:
            picked.update(able)
            continue
        threshold = heapq.nsmallest(rivals, (costs[i] for i in able))[-1]
        picked.update(i for i in able if costs[i] <= threshold)
    return list(picked)


def _cheapest_of_size(offers: list[Offer], beds: int, size: int, wanted: int,
                      steps: int) -> list[tuple[int, tuple[int, ...]]]:
    """Branch and bound over offers sorted by their cheapest bed: the `wanted` cheapest sets of `size` listings.

    A partial set is dropped when even its cheapest completion cannot beat the worst set kept: every bed
    of a later listing costs at least that listing's cheapest bed, and the offers come cheapest-first,
    so once one candidate is too dear, every later one is too.
    """
    count = len(offers)
    caps = [min(len(o.prices), beds) for o in offers]
    cheapest = [o.prices[0] for o in offers]
    # top[i][r]: the r largest capacities among offers[i:], so a set that cannot reach `beds` stops early.
    top = [[0] * (size + 1) for _ in range(count + 1)]
    best: list[int] = []
    for i in range(count - 1, -1, -1):
        best = sorted(best + [caps[i]], reverse=True)[:size]
        for r in range(1, size + 1):
            top[i][r] = sum(best[:r])
    # at_least[c]: ascending indexes of offers with capacity >= c, for the last pick of a set.
    at_least = [[i for i in range(count) if caps[i] >= c] for c in range(beds + 1)]
    kept: list[tuple[int, int, tuple[int, ...]]] = []  # a max-heap on total, as (-total, -sequence, set)
    sequence = iter(range(10**9))
    taken = [0]

    def spent() -> bool:
        """Count one step; true once `steps` are spent and some set is kept (finding a first set is cheap:
        the capacity check below cuts every branch that cannot hold `beds`)."""
        taken[0] += 1
        return taken[0] > steps and bool(kept)

    def worst() -> int | None:
        return -kept[0][0] if len(kept) >= wanted else None

    def bound(base: int, extras: list[int], firsts: int, floor: int) -> int:
        """The least total of a completion by `firsts` more listings, none with a bed cheaper than `floor`.

        Each chosen listing gives its cheapest bed (`base`); the other beds come from the chosen
        listings' further beds (`extras`, ascending) or at `floor` each from the listings still to come.
        """
        total, rest = base + firsts * floor, beds - size
        for price in extras[:rest]:
            if price >= floor:
                break
            total += price
            rest -= 1
        return total + rest * floor

    def keep(total: int, chosen: tuple[int, ...]) -> None:
        entry = (-total, -next(sequence), chosen)
        if len(kept) < wanted:
            heapq.heappush(kept, entry)
        elif total < -kept[0][0]:
            heapq.heapreplace(kept, entry)

    def walk(start: int, chosen: tuple[int, ...], capacity: int, base: int, extras: list[int]) -> None:
        remaining = size - len(chosen)
        if remaining == 1:
            need = max(beds - capacity, 1)
            candidates = at_least[need] if need <= beds else []
            for i in candidates[bisect_left(candidates, start):]:
                if spent():
                    return
                limit = worst()
                if limit is not None and bound(base, extras, 1, cheapest[i]) >= limit:
                    break
                more = sorted(extras + list(offers[i].prices[1:caps[i]]))  # C's sort beats heapq.merge here
                keep(base + cheapest[i] + sum(more[:beds - size]), chosen + (i,))
            return
        for i in range(start, count - remaining + 1):
            if capacity + top[i][remaining] < beds or spent():
                break
            limit = worst()
            if limit is not None and bound(base, extras, remaining, cheapest[i]) >= limit:
                break
            walk(i + 1, chosen + (i,), capacity + caps[i], base + cheapest[i],
                 sorted(extras + list(offers[i].prices[1:caps[i]])))

    walk(0, (), 0, 0, [])
    return sorted(((-neg_total, chosen) for neg_total, _seq, chosen in kept))


def allocation(offers: list[Offer], beds: int) -> list[int]:
    """Beds per offer for the cheapest way to take exactly `beds` with at least one from each (prices ascend)."""
    counts = [1] * len(offers)
    extra = sorted((price, k, position) for k, offer in enumerate(offers)
                   for position, price in enumerate(offer.prices[1:beds], start=1))
    for _price, k, _position in extra[:beds - len(offers)]:
        counts[k] += 1
    return counts




def _proposal(offers: list[Offer], beds: int, nights: int) -> Proposal:
    parts = [Part(offer.listing_id, offer.title, offer.walking_minutes, list(offer.bed_ids[:n]),
                  sum(offer.prices[:n]) * nights)
             for offer, n in zip(offers, allocation(offers, beds), strict=False)]
    parts.sort(key=lambda part: (part.walking_minutes, part.listing_id))
    return Proposal(parts, sum(part.total_ore for part in parts), max(part.walking_minutes for part in parts))


# ---------------------------------------------------------------------------------------------
# The allocation draw: one choice per request, preferred listings first
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """Exactly N beds for a request: (listing id, bed ids) per listing, and what ranks it against other choices."""

    parts: tuple[tuple[int, tuple[int, ...]], ...]
    preferred_beds: int  # beds in the request's preferred listings
    preference: tuple[int, ...]  # beds in each preferred listing, in the order given (0 for one with no free bed)
    total_ore: int  # per night

    @property
    def listings(self) -> int:
        return len(self.parts)

    def key(self) -> tuple:
        """Smaller is better: most preferred beds, then most in the first preferred listing, the second, ...;
        then fewest listings; then lowest total."""
        return (-self.preferred_beds, tuple(-n for n in self.preference), self.listings, self.total_ore)


def best_choice(offers: list[Offer], beds: int, max_listings: int, preferred: Sequence[int] = ()) -> Choice | None:
    """Of every way to take exactly `beds` of these offers' beds from at most `max_listings` listings (each offer
    its cheapest beds first), the one with the most beds in the `preferred` listings (then, tied, the most in the
    first of them, then the second, ...), then the fewest listings, then the lowest total; None when none exists.

    A choice's preferred listings Q decide its preference figures: with room for all `beds` in Q, the preferred
    listings in their order take as many as they can (each at least one); else Q gives every free bed it has and
    the rest comes from the fewest, then cheapest, other listings (`best_sets`). So the sets Q are tried in the
    order of their figures, and the first that can be completed within `max_listings` is the answer.
    """
    by_id = {offer.listing_id: offer for offer in offers}
    wanted = list(dict.fromkeys(lid for lid in preferred if lid in by_id))
    chosen_pref = [by_id[lid] for lid in wanted]
    others = [offer for offer in offers if offer.listing_id not in set(wanted)]
    caps_desc = sorted((min(len(o.prices), beds) for o in others), reverse=True)
    room = [0]
    for cap in caps_desc:
        room.append(room[-1] + cap)

    def others_hold(rest: int, slots: int) -> bool:
        return rest == 0 or (slots >= 1 and room[min(slots, len(caps_desc))] >= rest)

    candidates = []
    for size in range(0, min(len(chosen_pref), max_listings, beds) + 1):
        for subset in combinations(range(len(chosen_pref)), size):
            counts = [0] * len(chosen_pref)
            caps = {i: min(len(chosen_pref[i].prices), beds) for i in subset}
            if sum(caps.values()) >= beds:  # all in Q: each in turn as many as leaves one for each later member
                left = beds
                for position, i in enumerate(subset):
                    counts[i] = min(caps[i], left - (len(subset) - position - 1))
                    left -= counts[i]
            else:  # every free bed of Q, the rest from other listings
                for i in subset:
                    counts[i] = caps[i]
            candidates.append((-sum(counts), tuple(-n for n in counts), subset, counts, beds - sum(counts)))
    candidates.sort(key=lambda item: (item[0], item[1]))
    for _neg, _vector, subset, counts, rest in candidates:
        if not others_hold(rest, max_listings - len(subset)):
            continue
        parts = [(chosen_pref[i], counts[i]) for i in subset]
        if rest:
            indexes = best_sets(others, rest, max_listings - len(subset), 1)[0]
            picked = [others[i] for i in indexes]
            parts += list(zip(picked, allocation(picked, rest), strict=True))
        taken = {chosen_pref[i].listing_id: counts[i] for i in subset}
        return Choice(
            parts=tuple((offer.listing_id, tuple(offer.bed_ids[:n])) for offer, n in parts),
            preferred_beds=sum(counts), preference=tuple(taken.get(lid, 0) for lid in dict.fromkeys(preferred)),
            total_ore=sum(sum(offer.prices[:n]) for offer, n in parts))
    return None


@dataclass
class _Listed:
    listing_id: int
    title: str
    walking_minutes: int
    beds: list[tuple[int, int]] = field(default_factory=list)  # (price per night, bed id), ascending


class FreeBeds:
    """The season's beds on offer and the nights each is occupied, held in memory for many choices in a row.

    Loaded in two queries (`availability.bookable_beds`, `availability.occupied_nights`), so the draw does not
    search the database once per request; `take` marks what the draw itself took. Whatever others change meanwhile
    is not seen: a choice that meets a taken bed-night fails at its insert (the UNIQUE index), and the draw loads
    again. Prices are the ones a booking would copy (never above the season's cap)."""

    def __init__(self, season: Season, now: datetime):
        self.first_night = season.first_night
        self.masks: dict[int, int] = {}
        self.listings: list[_Listed] = []
        self.host_of: dict[int, int] = {}  # listing id -> its host's user id
        by_id: dict[int, _Listed] = {}
        for listing_id, host_id, title, walking, bed_id, price in db.session.execute(bookable_beds(season)):
            listed = by_id.get(listing_id)
            if listed is None:
                listed = by_id[listing_id] = _Listed(listing_id, title, walking)
                self.host_of[listing_id] = host_id
            listed.beds.append((min(price, season.price_cap_ore), bed_id))
            self.masks[bed_id] = 0
        for listed in by_id.values():
            listed.beds.sort()
        self.listings = sorted(by_id.values(), key=lambda listed: listed.listing_id)
        for bed_id, night in db.session.execute(occupied_nights(season.first_night, season.check_out_day, now)):
            if bed_id in self.masks:
                self.masks[bed_id] |= self._bit(night)

    def _bit(self, night: date) -> int:
        return 1 << (night - self.first_night).days

    def _stay_mask(self, check_in: date, check_out: date) -> int:
        """One bit per night of the stay (bit 0: the season's first night)."""
        return ((1 << (check_out - check_in).days) - 1) << (check_in - self.first_night).days

    def offers(self, check_in: date, check_out: date, beds: int, *, max_walking_minutes: int | None = None,
               max_price_ore: int | None = None) -> list[Offer]:
        """Per listing within the limits, its cheapest `beds` beds free every night of the stay (as `propose`)."""
        stay, masks, found = self._stay_mask(check_in, check_out), self.masks, []
        for listed in self.listings:
            if max_walking_minutes is not None and listed.walking_minutes > max_walking_minutes:
                continue
            free = [(price, bed_id) for price, bed_id in listed.beds if not masks[bed_id] & stay
                    and (max_price_ore is None or price <= max_price_ore)][:beds]
            if free:
                found.append(Offer(listed.listing_id, listed.title, listed.walking_minutes,
                                   tuple(bed_id for _price, bed_id in free), tuple(price for price, _bed in free)))
        return found

    def take(self, bed_ids: Sequence[int], check_in: date, check_out: date) -> None:
        """Mark these beds occupied for the stay (the draw took them)."""
        stay = self._stay_mask(check_in, check_out)
        for bed_id in bed_ids:
            self.masks[bed_id] |= stay
