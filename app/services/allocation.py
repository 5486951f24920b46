"""The allocation round (API.md "The allocation round (fair opening)"): requests, the draw, the published result.

A season may open with a round instead of a race: from `requests_open_at` until `allocation_at` each organisation
number makes one request (a stay, a number of beds, limits, preferred listings, the contract accepted in advance);
at `allocation_at` the draw ranks the requests by SHA-256(seed + ":" + ref) (`lottery`) and, in rank order, forms
for each an order of exactly its beds (`orders.form_order`, the choice from `proposals.best_choice`), all or
nothing, or puts it on the waiting list. The seed's SHA-256 is public from the moment the season has a round; the
seed itself once the draw is done, so anyone can recompute the ranks (`lottery.verify`).

Exactly once, however often and by however many workers it is run, and an interrupted draw is completed by the
next run without redoing anything:

- The round's row is the draw's lock (lock order: round, season, listing, beds, prices, delegations). A request or
  a withdrawal takes it FOR SHARE and re-checks the draw's state under it; every step of the draw takes it FOR
  UPDATE. So a request is either wholly before the ranking (and ranked) or refused `round_closed`.
- Step 1, one transaction: the ranks of every submitted request are fixed and the state moves pending -> drawing.
- Step 2, one short transaction per request, in rank order: under the round's lock, the lowest-ranked request
  still `submitted` is decided (its order, or its waiting-list entry) and marked in the same transaction. A second
  worker waits for the lock, then finds that request decided and takes the next; the rank order holds because
  each step takes the first undecided request. The beds are chosen from the season's inventory held in memory
  (`proposals.FreeBeds`), loaded again whenever the step meets what it did not expect.
- Step 3, one transaction: with no request left undecided, the state moves to drawn and the seed is published.
- On PostgreSQL one worker at a time drives a season's draw (an advisory lock, held on a connection of its own and
  released by the database if the process dies), so two workers do not take turns reloading the inventory; the
  guarantees above do not depend on it.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.i18n import local_dt
from app.models import (
    AllocationRequest,
    AllocationRound,
    Delegation,
    HostProfile,
    Listing,
    Season,
    User,
    WaitlistEntry,
)
from app.services import audit, events, lottery, waitlist
from app.services.access import owned_delegation
from app.services.availability import check_not_past, check_stay
from app.services.base import Actor, now_or, unit_of_work
from app.services.booking import PAYMENT_METHODS, prepare_part
from app.services.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from app.services.hoarding import LIMIT_CODE, enforce_organisation_limits
from app.services.inventory import MAX_BEDS_PER_BOOKING
from app.services.listings import is_publicly_visible
from app.services.orders import form_order, order_stay
from app.services.proposals import DEFAULT_LISTINGS, MAX_LISTINGS, Choice, FreeBeds, best_choice
from app.services.seasons import price_errors, season_for_year, season_or_404

log = logging.getLogger(__name__)

ROUND_STATUSES = ("scheduled", "open", "closed", "drawn")
MAX_PREFERRED = 5
# An unallocated request waits for its beds on the waiting list, whose entries are at most this many beds.
MAX_REQUEST_BEDS = MAX_BEDS_PER_BOOKING
# A step that meets a change it did not expect (a bed taken or removed, a listing withdrawn) loads the inventory
# again and chooses again; this many times at most, then the run stops and the next run goes on from there.
STEP_ATTEMPTS = 5
# Requests read ahead at a time, in rank order (each is re-read under the lock before it is decided).
READ_AHEAD = 50
# The key of a season's advisory lock on PostgreSQL is (ADVISORY_CLASS, season id).
ADVISORY_CLASS = 15_0001


# ---------------------------------------------------------------------------------------------
# The round and its status
# ---------------------------------------------------------------------------------------------


def round_status(season: Season, allocation_round: AllocationRound, now: datetime) -> str:
    """scheduled (requests not open yet), open, closed (waiting for the draw, or being drawn) or drawn."""
    if allocation_round.draw_state == "drawn":
        return "drawn"
    assert season.requests_open_at is not None and season.allocation_at is not None  # a round  # nosec B101
    if now < season.requests_open_at:
        return "scheduled"
    if now < season.allocation_at:
        return "open"
    return "closed"


def _no_round(year: int) -> NotFound:
    return NotFound(_("Säsongen %(year)s har ingen fördelningsomgång.", year=year))


def season_round(year: int) -> tuple[Season, AllocationRound]:
    """The season of `year` and its round, or NotFound."""
    season = season_or_404(year)
    allocation_round = db.session.scalar(select(AllocationRound).where(AllocationRound.season_id == season.id))
    if allocation_round is None or not season.has_round:
        raise _no_round(year)
    return season, allocation_round


def round_of(season: Season | None) -> AllocationRound | None:
    """The season's round, or None (pages that show a round when there is one)."""
    if season is None or not season.has_round:
        return None
    return db.session.scalar(select(AllocationRound).where(AllocationRound.season_id == season.id))


@dataclass(frozen=True)
class RoundView:
    """What anyone may see of a round: its times, status, commitment, the number of requests; the seed once drawn."""

    year: int
    requests_open_at: datetime
    allocation_at: datetime
    bookings_open_at: datetime
    status: str
    seed_commitment: str
    seed: str | None
    requests: int
    drawn_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {"year": self.year, "requests_open_at": self.requests_open_at.isoformat(),
                "allocation_at": self.allocation_at.isoformat(), "status": self.status,
                "seed_commitment": self.seed_commitment, "seed": self.seed, "requests": self.requests,
                "bookings_open_at": self.bookings_open_at.isoformat(),
                "drawn_at": self.drawn_at.isoformat() if self.drawn_at else None}


def public_round(year: int, *, now: datetime | None = None) -> RoundView:
    """The round of `year` as the public sees it (GET /allocation/{year}, /insyn, /fordelning/{year})."""
    season, allocation_round = season_round(year)
    status = round_status(season, allocation_round, now_or(now))
    count = db.session.scalar(select(func.count(AllocationRequest.id)).where(
        AllocationRequest.season_id == season.id, AllocationRequest.status != "withdrawn")) or 0
    assert season.requests_open_at is not None and season.allocation_at is not None  # a round  # nosec B101
    return RoundView(season.year, season.requests_open_at, season.allocation_at, season.bookings_open_at, status,
                     allocation_round.seed_commitment, allocation_round.seed if status == "drawn" else None, count,
                     allocation_round.drawn_at)


def result(year: int) -> dict[str, Any]:
    """The whole draw, once done (GET /allocation/{year}/result): the seed, its commitment, and every ranked request
    as {ref, rank, allocated, beds} in rank order; 409 `not_drawn` before."""
    season, allocation_round = season_round(year)
    if allocation_round.draw_state != "drawn":
        raise Conflict(_("Dragningen för %(year)s är inte gjord än; resultatet publiceras när den är klar.",
                         year=year), code="not_drawn")
    rows = db.session.execute(select(AllocationRequest.ref, AllocationRequest.rank, AllocationRequest.status,
                                     AllocationRequest.beds)
                              .where(AllocationRequest.season_id == season.id, AllocationRequest.rank.is_not(None))
                              .order_by(AllocationRequest.rank)).all()
    return {"year": season.year, "seed": allocation_round.seed, "seed_commitment": allocation_round.seed_commitment,
            "draw": [{"ref": ref, "rank": rank, "allocated": status == "allocated", "beds": beds}
                     for ref, rank, status, beds in rows]}


def verify(year: int) -> lottery.Verification:
    """Recompute the published draw of `year` from its seed and refs (what `flask allocation verify` checks)."""
    return lottery.verify(result(year))


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


def preferred_ids(request: AllocationRequest) -> list[int]:
    return list(json.loads(request.preferred_listing_ids or "[]"))


def _round_closed(season: Season) -> DomainError:
    assert season.requests_open_at is not None and season.allocation_at is not None  # a round  # nosec B101
    return DomainError(_("Ansökningarna till fördelningen %(year)s tas emot från %(opens)s till %(closes)s.",
                         year=season.year, opens=local_dt(season.requests_open_at, "d MMM y HH:mm"),
                         closes=local_dt(season.allocation_at, "d MMM y HH:mm")), code="round_closed")


def _check_request_shape(beds, max_walking_minutes, max_price_ore, max_listings, preferred_listing_ids,
                         payment_method) -> list[int]:
    errors: dict[str, list[str]] = {}
    if not isinstance(beds, int) or isinstance(beds, bool) or not 1 <= beds <= MAX_REQUEST_BEDS:
        errors["beds"] = [_("Mellan 1 och %(max)s bäddar.", max=MAX_REQUEST_BEDS)]
    if max_walking_minutes is not None and not 0 <= max_walking_minutes <= 600:
        errors["max_walking_minutes"] = [_("Mellan 0 och 600 minuter, eller lämna tomt.")]
    if max_price_ore is not None and price_errors(max_price_ore):
        errors["max_price_ore"] = price_errors(max_price_ore)
    if not isinstance(max_listings, int) or not 1 <= max_listings <= MAX_LISTINGS:
        errors["max_listings"] = [_("Mellan 1 och %(max)s.", max=MAX_LISTINGS)]
    preferred = list(preferred_listing_ids or [])
    if len(preferred) > MAX_PREFERRED:
        errors["preferred_listing_ids"] = [_("Högst %(max)s önskade boenden.", max=MAX_PREFERRED)]
    elif len(set(preferred)) != len(preferred):
        errors["preferred_listing_ids"] = [_("Varje boende får bara önskas en gång.")]
    if payment_method not in PAYMENT_METHODS:
        errors["payment_method"] = [_("Välj 'invoice' (faktura) eller 'card' (kort).")]
    if errors:
        raise ValidationFailed(errors)
    return preferred


def _check_preferred_listings(preferred: Sequence[int]) -> None:
    """Each preferred listing exists and is public (published, its host approved)."""
    if not preferred:
        return
    found = {listing.id: listing for listing in db.session.scalars(select(Listing).where(Listing.id.in_(preferred)))}
    unknown = [lid for lid in preferred if lid not in found or not is_publicly_visible(found[lid])]
    if unknown:
        raise ValidationFailed({"preferred_listing_ids": [
            _("Okända eller opublicerade boenden: %(ids)s.", ids=", ".join(map(str, unknown)))]})


def _locked_round(season_id: int, *, share: bool) -> AllocationRound:
    """The round's row, fresh and locked for this unit of work: FOR SHARE for a request or a withdrawal (several at
    once), FOR UPDATE for a step of the draw (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers)."""
    query = select(AllocationRound).where(AllocationRound.season_id == season_id)
    query = query.with_for_update(read=True) if share else query.with_for_update()
    return db.session.scalars(query.execution_options(populate_existing=True)).one()


def submit_request(actor: Actor, year: int, *, delegation_id: int, check_in: date, check_out: date, beds: int,
                   payment_method: str, accept_contract: bool, max_walking_minutes: int | None = None,
                   max_price_ore: int | None = None, max_listings: int = DEFAULT_LISTINGS,
                   preferred_listing_ids: Sequence[int] = (), now: datetime | None = None) -> AllocationRequest:
    """Make the organisation's request in the round of `year`, with the season's contract accepted in advance."""
    now = now_or(now)
    if actor.role != "coordinator":
        raise Forbidden(_("Bara delegationers samordnare ansöker i fördelningen."))
    delegation = owned_delegation(actor, delegation_id)
    season, _round = season_round(year)
    preferred = _check_request_shape(beds, max_walking_minutes, max_price_ore, max_listings, preferred_listing_ids,
                                     payment_method)
    nights = check_stay(season, check_in, check_out)
    check_not_past(check_in, now)
    _check_preferred_listings(preferred)
    if accept_contract is not True:
        raise DomainError(_("Du måste godkänna det bindande avtalet i förväg för att ansöka."),
                          code="contract_not_accepted")
    season_id, organisation_number, terms_version = season.id, delegation.organisation_number, season.terms_version
    try:
        with unit_of_work():
            allocation_round = _locked_round(season_id, share=True)
            season = db.session.get_one(Season, season_id)
            if allocation_round.draw_state != "pending" or round_status(season, allocation_round, now) != "open":
                raise _round_closed(season)
            if db.session.scalar(select(AllocationRequest.id).where(
                    AllocationRequest.season_id == season_id,
                    AllocationRequest.organisation_number == organisation_number,
                    AllocationRequest.status != "withdrawn")) is not None:
                raise _request_exists(organisation_number)
            enforce_organisation_limits(delegation_id, season_id, bed_nights=beds * nights,
                                        card_hold=payment_method == "card", now=now)
            request = AllocationRequest(
                season_id=season_id, delegation_id=delegation_id, coordinator_id=actor.user_id,
                organisation_number=organisation_number, ref=lottery.new_ref(), check_in=check_in,
                check_out=check_out, beds=beds, max_walking_minutes=max_walking_minutes, max_price_ore=max_price_ore,
                max_listings=max_listings, preferred_listing_ids=json.dumps(preferred),
                payment_method=payment_method, terms_version=terms_version, accepted_at=now, accepted_ip=actor.ip,
                status="submitted", created_at=now)
            db.session.add(request)
            db.session.flush()
            audit.record(actor, "allocation.requested", "allocation_request", request.id,
                         after={"ref": request.ref, "delegation_id": delegation_id, "check_in": check_in,
                                "check_out": check_out, "beds": beds, "max_walking_minutes": max_walking_minutes,
                                "max_price_ore": max_price_ore, "max_listings": max_listings,
                                "preferred_listing_ids": preferred, "payment_method": payment_method,
                                "terms_version": terms_version}, now=now)
    except IntegrityError:  # the partial UNIQUE index: another request of the number committed meanwhile
        raise _request_exists(organisation_number) from None
    return request


def _request_exists(organisation_number: str) -> Conflict:
    return Conflict(_("Organisationen %(number)s har redan en ansökan i den här fördelningen; dra tillbaka den för "
                      "att göra en ny.", number=organisation_number), code="request_exists")


def own_request(actor: Actor, year: int, request_id: int) -> AllocationRequest:
    """A request of the acting coordinator (or any, for an admin) in the round of `year`; anyone else gets 404."""
    request = db.session.get(AllocationRequest, request_id)
    season = season_for_year(year)
    if (request is None or season is None or request.season_id != season.id
            or not (actor.is_admin or request.coordinator_id == actor.user_id)):
        raise NotFound(_("Ansökan finns inte."))
    return request


def requests_for(actor: Actor, year: int | None = None) -> list[AllocationRequest]:
    """The coordinator's requests (in one season's round, or in every one), newest first."""
    query = select(AllocationRequest).where(AllocationRequest.coordinator_id == actor.user_id)
    if year is not None:
        season = season_for_year(year)
        query = query.where(AllocationRequest.season_id == (season.id if season else -1))
    return list(db.session.scalars(query.order_by(AllocationRequest.id.desc())))


def withdraw_request(actor: Actor, year: int, request_id: int, *, now: datetime | None = None) -> AllocationRequest:
    """Withdraw a request before the draw (409 `round_closed` once the draw has begun); withdrawing twice is a
    no-op."""
    now = now_or(now)
    request = own_request(actor, year, request_id)
    request_id, season_id = request.id, request.season_id
    with unit_of_work():
        allocation_round = _locked_round(season_id, share=True)
        request = db.session.scalars(select(AllocationRequest).where(AllocationRequest.id == request_id)
                                     .with_for_update().execution_options(populate_existing=True)).one()
        if allocation_round.draw_state != "pending" or request.status in ("allocated", "unallocated"):
            raise Conflict(_("Dragningen är gjord eller pågår; ansökan kan inte dras tillbaka längre."),
                           code="round_closed", status_now=request.status)
        if request.status == "withdrawn":
            return request
        request.status = "withdrawn"
        request.withdrawn_at = now
        audit.record(actor, "allocation.withdrawn", "allocation_request", request.id,
                     before={"status": "submitted"}, after={"status": "withdrawn"}, now=now)
    return request


# ---------------------------------------------------------------------------------------------
# The draw
# ---------------------------------------------------------------------------------------------


@dataclass
class DrawReport:
    """What a run of the draw did: `already` (drawn before: nothing changed), `busy` (another worker is drawing
    it now), else how many requests this run decided, and the timings."""

    year: int
    already: bool = False
    busy: bool = False
    yielded: bool = False  # met another run drawing the same season and left the rest to it
    drawn: bool = False  # the draw is complete after this run
    requests: int = 0  # ranked in the draw
    allocated: int = 0  # by this run
    unallocated: int = 0  # by this run
    seconds: float = 0.0
    longest_transaction: float = 0.0  # seconds
    transactions: int = 0
    reloads: int = 0  # times the inventory was loaded

    def lines(self) -> list[str]:
        if self.already:
            return [f"The draw for {self.year} was already made; nothing changed."]
        if self.busy:
            return [f"Another worker is drawing {self.year} right now; nothing changed here."]
        state = "complete" if self.drawn else (
            "another worker is completing it" if self.yielded else "not complete")
        return [f"Draw {self.year}: {state}; {self.requests} request(s) ranked.",
                f"Decided by this run: {self.allocated} allocated, {self.unallocated} unallocated.",
                f"Took {self.seconds:.2f} s in {self.transactions} transaction(s); the longest "
                f"{self.longest_transaction * 1000:.0f} ms; inventory loaded {self.reloads} time(s)."]


@contextmanager
def _timed(report: DrawReport) -> Iterator[None]:
    started = time.perf_counter()
    try:
        with unit_of_work():
            yield
    finally:
        report.transactions += 1
        report.longest_transaction = max(report.longest_transaction, time.perf_counter() - started)


@contextmanager
def _driving(season_id: int) -> Iterator[bool]:
    """On PostgreSQL: whether this process got the season's draw to itself (an advisory lock on a connection of
    its own, until the end of the block); elsewhere always (SQLite serialises writers anyway)."""
    if db.engine.dialect.name != "postgresql":
        yield True
        return
    with db.engine.connect() as connection:
        got = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:c, :s)"), {"c": ADVISORY_CLASS,
                                                                                   "s": season_id}))
        connection.commit()
        try:
            yield got
        finally:
            if got:
                connection.scalar(text("SELECT pg_advisory_unlock(:c, :s)"), {"c": ADVISORY_CLASS, "s": season_id})
                connection.commit()


def draw(year: int, *, now: datetime | None = None) -> DrawReport:
    """Run the draw of `year` (from `allocation_at` on), or complete an interrupted one; a run after the draw
    changes nothing and says so (`already`)."""
    now = now_or(now)
    started = time.perf_counter()
    season, allocation_round = season_round(year)
    report = DrawReport(year)
    if allocation_round.draw_state == "drawn":
        report.already = report.drawn = True
        return report
    assert season.allocation_at is not None  # a round  # nosec B101
    if now < season.allocation_at:
        raise Conflict(_("Fördelningen %(year)s dras %(when)s, inte före.", year=year,
                         when=local_dt(season.allocation_at, "d MMM y HH:mm")), code="round_open")
    season_id = season.id
    with _driving(season_id) as mine:
        if not mine:
            report.busy = True
            return report
        _Draw(season_id, report, now).run()
    report.seconds = time.perf_counter() - started
    return report


def draw_due(now: datetime | None = None) -> list[DrawReport]:
    """Draw every season whose round's `allocation_at` has passed and is not drawn yet (the worker's job)."""
    now = now_or(now)
    years = list(db.session.scalars(
        select(Season.year).join(AllocationRound, AllocationRound.season_id == Season.id)
        .where(Season.allocation_at <= now, AllocationRound.draw_state != "drawn").order_by(Season.year)))
    db.session.commit()  # end the read: each draw runs its own transactions
    return [draw(year, now=now) for year in years]


@dataclass
class _Request:
    """A request's values, read before its step (plain values: a unit of work's start expires loaded objects)."""

    id: int
    rank: int
    ref: str
    delegation_id: int
    coordinator_id: int
    check_in: date
    check_out: date
    beds: int
    max_walking_minutes: int | None
    max_price_ore: int | None
    max_listings: int
    preferred: list[int]
    payment_method: str
    accepted_at: datetime
    accepted_ip: str | None

    @classmethod
    def of(cls, request: AllocationRequest) -> _Request:
        assert request.rank is not None  # ranked before any step  # nosec B101
        return cls(request.id, request.rank, request.ref, request.delegation_id, request.coordinator_id,
                   request.check_in, request.check_out, request.beds, request.max_walking_minutes,
                   request.max_price_ore, request.max_listings, preferred_ids(request), request.payment_method,
                   request.accepted_at, request.accepted_ip)


class _StepFailed(Exception):
    """A step met a change it did not expect; the inventory is loaded again and the step tried again."""


@dataclass
class _Draw:
    season_id: int
    report: DrawReport
    now: datetime
    free: FreeBeds | None = None
    next_rank: int | None = None  # the rank this run expects to decide next (else someone else decided some)
    ahead: list[_Request] = field(default_factory=list)  # the next undecided requests, the lowest rank last
    actor: Actor = field(default_factory=Actor.system)

    def run(self) -> None:
        self.rank_requests()
        failures = 0
        while (request := self.next_request()) is not None:
            if self.free is None or request.rank != self.next_rank:
                self.load()
            try:
                mine = self.step(request)
            except _StepFailed as failure:
                failures += 1
                if failures >= STEP_ATTEMPTS:
                    raise Conflict(_("Dragningen stannade vid ansökan med plats %(rank)s (%(reason)s); kör den igen "
                                     "för att fortsätta därifrån.", rank=request.rank, reason=str(failure)),
                                   code="draw_interrupted", rank=request.rank) from None
                self.free = None  # load again and choose again
                self.ahead.append(request)
                continue
            if not mine:
                # Another run decided it meanwhile: that run is drawing now, and goes on with the next request
                # while this one would only follow it, loading the inventory again each time. Leave it the draw
                # (the next run completes it should that one stop).
                self.report.yielded = True
                return
            failures = 0
            self.next_rank = request.rank + 1
        self.finish()

    def load(self) -> None:
        season = db.session.get_one(Season, self.season_id)
        self.free = FreeBeds(season, self.now)
        db.session.commit()  # end the read
        self.report.reloads += 1

    def rank_requests(self) -> None:
        """Step 1: fix every submitted request's rank, pending -> drawing (a draw already under way: nothing)."""
        with _timed(self.report):
            allocation_round = _locked_round(self.season_id, share=False)
            if allocation_round.draw_state == "pending":
                refs: dict[str, int] = dict(db.session.execute(select(AllocationRequest.ref, AllocationRequest.id)
                                                               .where(AllocationRequest.season_id == self.season_id,
                                                                      AllocationRequest.status == "submitted"))
                                            .tuples().all())
                ranks = lottery.ranks(allocation_round.seed, refs)
                if ranks:
                    db.session.execute(update(AllocationRequest), [
                        {"id": refs[ref], "rank": rank} for ref, rank in ranks.items()])
                allocation_round.draw_state = "drawing"
                allocation_round.draw_started_at = self.now
                audit.record(self.actor, "allocation.draw_started", "allocation_round", allocation_round.id,
                             after={"requests": len(ranks), "seed_commitment": allocation_round.seed_commitment},
                             now=self.now)
        self.report.requests = db.session.scalar(select(func.count(AllocationRequest.id)).where(
            AllocationRequest.season_id == self.season_id, AllocationRequest.rank.is_not(None))) or 0
        db.session.commit()

    def next_request(self) -> _Request | None:
        """The lowest-ranked request still undecided, read a batch ahead (each step re-checks it under the lock)."""
        if not self.ahead:
            self.ahead = [_Request.of(request) for request in db.session.scalars(select(AllocationRequest).where(
                AllocationRequest.season_id == self.season_id, AllocationRequest.status == "submitted",
                AllocationRequest.rank.is_not(None)).order_by(AllocationRequest.rank).limit(READ_AHEAD))]
            self.ahead.reverse()
            db.session.commit()  # end the read
        return self.ahead.pop() if self.ahead else None

    def choose(self, request: _Request) -> Choice | None:
        assert self.free is not None  # loaded by run()  # nosec B101
        offers = self.free.offers(request.check_in, request.check_out, request.beds,
                                  max_walking_minutes=request.max_walking_minutes,
                                  max_price_ore=request.max_price_ore)
        return best_choice(offers, request.beds, request.max_listings, request.preferred)

    def step(self, request: _Request) -> bool:
        """Step 2 for one request: its order, or its waiting-list entry, and its decision, in one transaction.
        False when another run had decided it meanwhile (nothing done here)."""
        choice = self.choose(request)
        coordinator = Actor(request.coordinator_id, "coordinator", ip=request.accepted_ip)
        try:
            with _timed(self.report):
                allocation_round = _locked_round(self.season_id, share=False)
                row = db.session.scalars(select(AllocationRequest).where(AllocationRequest.id == request.id)
                                         .with_for_update().execution_options(populate_existing=True)).one()
                if allocation_round.draw_state != "drawing" or row.status != "submitted":
                    return False  # decided by another run meanwhile
                # The parts' prices and contracts are read under the round's lock, not before it as a booking reads
                # them: nobody else books before bookings open, and what is read here stays loaded for the mails.
                season = db.session.get_one(Season, self.season_id)
                held = self.hold_parties(request, choice)  # noqa: F841 (held until the step ends)
                prepared = [prepare_part(coordinator, season, request.delegation_id, list(bed_ids),
                                         request.check_in, request.check_out, self.now,
                                         accepted_at=request.accepted_at, by_draw=True)
                            for _listing_id, bed_ids in choice.parts] if choice else []
                stay = order_stay(season, request.delegation_id, request.check_in, request.check_out,
                                  request.payment_method, self.now,
                                  hold=timedelta(hours=season.allocation_payment_hours), by_draw=True)
                order, refusal = None, None
                # Every step of forming an order flushes where it reads back what it wrote (the bookings, the
                # contracts, the waiting-list entry); flushing before each of the step's forty-odd queries as well
                # cost a quarter of the draw's time.
                with db.session.no_autoflush:
                    if prepared:
                        try:
                            order = form_order(coordinator, prepared, stay, self.now)
                        except DomainError as error:
                            # An organisation over its limit is refused before anything of the order is written
                            # (form_order checks the limits first): unallocated, in the same transaction.
                            if error.code != LIMIT_CODE:
                                raise
                            refusal = error.code
                    self.decide(row, order, refusal)
        except IntegrityError as error:  # a bed-night taken since the inventory was loaded
            raise _StepFailed(str(error.orig)) from None
        except DomainError as error:
            # Taken (bed_nights_taken), a bed removed (state_changed, or unknown: invalid), a listing no longer on
            # offer (not_bookable) since the inventory was loaded.
            if error.code in ("bed_nights_taken", "state_changed", "not_bookable", "invalid"):
                raise _StepFailed(error.code) from None
            raise
        if order is not None and choice is not None:
            self.report.allocated += 1
            assert self.free is not None  # nosec B101
            self.free.take([bed_id for _lid, bed_ids in choice.parts for bed_id in bed_ids], request.check_in,
                           request.check_out)
        else:
            self.report.unallocated += 1
        return True

    def hold_parties(self, request: _Request, choice: Choice | None) -> list:
        """Load the step's parties in three queries and keep them referenced until it ends: the contracts and the
        mails ask for the coordinator, the delegation and each host again, and the session forgets a row nobody
        references (its identity map holds them weakly), so each would be read anew."""
        assert self.free is not None  # nosec B101
        hosts = {self.free.host_of[listing_id] for listing_id, _bed_ids in choice.parts} if choice else set()
        return [*db.session.scalars(select(User).where(User.id.in_({request.coordinator_id, *hosts}))),
                *db.session.scalars(select(HostProfile).where(HostProfile.user_id.in_(hosts))),
                db.session.get_one(Delegation, request.delegation_id)]

    def decide(self, row: AllocationRequest, order, refusal: str | None) -> None:
        """Mark the request allocated (with its order) or unallocated (with a waiting-list entry) (flush only)."""
        row.decided_at = self.now
        entry: WaitlistEntry | None = None
        place = None
        if order is not None:
            row.status, row.order_id = "allocated", order.id
            after: dict[str, Any] = {"status": "allocated", "rank": row.rank, "order_id": order.id,
                                     "booking_ids": [booking.id for booking in order.bookings]}
        else:
            entry = waitlist.add_entry(self.actor, delegation_id=row.delegation_id, season_id=row.season_id,
                                       check_in=row.check_in, check_out=row.check_out, beds=row.beds,
                                       max_walking_minutes=row.max_walking_minutes, max_price_ore=row.max_price_ore,
                                       now=self.now)
            row.status, row.waitlist_entry_id = "unallocated", entry.id
            place = waitlist.place_in_queue(entry)
            after = {"status": "unallocated", "rank": row.rank, "waitlist_entry_id": entry.id,
                     "reason": refusal or "no_beds"}
        db.session.flush()
        audit.record(self.actor, f"allocation.{row.status}", "allocation_request", row.id,
                     before={"status": "submitted"}, after=after, now=self.now)
        events.emit(events.ALLOCATION_DECIDED, request=row, order=order, entry=entry, place=place, now=self.now)

    def finish(self) -> None:
        """Step 3: with every ranked request decided, drawing -> drawn, and the seed is public."""
        with _timed(self.report):
            allocation_round = _locked_round(self.season_id, share=False)
            undecided = db.session.scalar(select(func.count(AllocationRequest.id)).where(
                AllocationRequest.season_id == self.season_id, AllocationRequest.status == "submitted",
                AllocationRequest.rank.is_not(None))) or 0
            if allocation_round.draw_state == "drawing" and not undecided:
                allocation_round.draw_state = "drawn"
                allocation_round.drawn_at = self.now
                decided = dict(db.session.execute(
                    select(AllocationRequest.status, func.count(AllocationRequest.id))
                    .where(AllocationRequest.season_id == self.season_id, AllocationRequest.rank.is_not(None))
                    .group_by(AllocationRequest.status)).tuples().all())
                audit.record(self.actor, "allocation.drawn", "allocation_round", allocation_round.id,
                             after={"seed": allocation_round.seed, "seed_commitment": allocation_round.seed_commitment,
                                    "allocated": decided.get("allocated", 0),
                                    "unallocated": decided.get("unallocated", 0)}, now=self.now)
            self.report.drawn = allocation_round.draw_state == "drawn"
