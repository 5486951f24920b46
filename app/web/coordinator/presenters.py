"""What the coordinator pages show, assembled from the services (no rules decided here)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import LIVE_LINE_STATES, Bed, BedNight, Booking, HostProfile, Listing, Room, Season
from app.services import booking as booking_service
from app.services import ledger, orders
from app.services.availability import ListingResult, search_page, taken_bed_nights
from app.services.contracts import snapshot_of
from app.services.errors import DomainError
from app.services.proposals import Proposal, propose
from app.services.rooming import RoomingRow, rooming_rows
from app.web.common import ResultPages


@dataclass
class PreviewLine:
    night: date
    bed_id: int
    bed: str
    price_ore: int


@dataclass
class ContractPreview:
    season: Season
    listing: Listing
    host_legal_name: str
    check_in: date
    check_out: date
    bed_ids: list[int]
    lines: list[PreviewLine]
    total_ore: int
    taken: list[tuple[str, date]]


def contract_preview(bed_ids: list[int], check_in: date, check_out: date) -> ContractPreview:
    """The contract the booking would form now, checked by the booking service's own rules."""
    return _preview_of(booking_service.quote_booking(bed_ids, check_in, check_out), check_in, check_out)


def _preview_of(quote: booking_service.Quote, check_in: date, check_out: date) -> ContractPreview:
    """A quote as the contract it would form, with the bed-nights already taken now (checked at render time)."""
    season, listing = quote.season, quote.listing
    lines = [PreviewLine(date.fromisoformat(line["night"]), line["bed_id"], line["bed"], line["price_ore"])
             for line in quote.lines]
    labels = {line.bed_id: line.bed for line in lines}
    bed_ids = sorted(labels)
    profile = db.session.get(HostProfile, listing.host_id)
    return ContractPreview(
        season=season, listing=listing, host_legal_name=profile.legal_name if profile else listing.host.name,
        check_in=check_in, check_out=check_out, bed_ids=bed_ids, lines=lines,
        total_ore=sum(line.price_ore for line in lines),
        taken=[(labels[bed_id], night) for bed_id, night in taken_bed_nights(bed_ids, check_in, check_out)],
    )


def conflict_list(error: DomainError, preview: ContractPreview) -> list[tuple[str, date]]:
    """The taken bed-nights of a `bed_nights_taken` refusal, as (bed label, night)."""
    labels = {line.bed_id: line.bed for line in preview.lines}
    return [(labels.get(item["bed_id"], str(item["bed_id"])), date.fromisoformat(item["night"]))
            for item in error.facts.get("conflicts", [])]


@dataclass
class OrderPreview:
    """Every part's contract for one stay, the season's terms (shared by all of them) and the order's total."""
    season: Season
    check_in: date
    check_out: date
    parts: list[ContractPreview]

    @property
    def total_ore(self) -> int:
        return sum(part.total_ore for part in self.parts)

    @property
    def beds(self) -> int:
        return sum(len(part.bed_ids) for part in self.parts)

    @property
    def nights(self) -> int:
        return (self.check_out - self.check_in).days

    @property
    def taken(self) -> bool:
        return any(part.taken for part in self.parts)


def order_preview(bed_groups: list[list[int]], check_in: date, check_out: date) -> OrderPreview:
    """The contracts an order of these parts would form now, checked by the order service's own rules."""
    quotes = orders.quote_order([{"bed_ids": bed_ids} for bed_ids in bed_groups], check_in, check_out)
    parts = [_preview_of(quote, check_in, check_out) for quote in quotes]
    return OrderPreview(parts[0].season, check_in, check_out, parts)


def order_conflicts(error: DomainError, preview: OrderPreview) -> list[tuple[ContractPreview, list[tuple[str, date]]]]:
    """The taken bed-nights of an order's `bed_nights_taken` refusal, part by part: (part, [(bed label, night)])."""
    taken = [(item["bed_id"], date.fromisoformat(item["night"])) for item in error.facts.get("conflicts", [])]
    found = []
    for part in preview.parts:
        labels = {line.bed_id: line.bed for line in part.lines}
        pairs = [(labels[bed_id], night) for bed_id, night in taken if bed_id in labels]
        if pairs:
            found.append((part, pairs))
    return found


def booked_beds(booking: Booking) -> list[tuple[int, str]]:
    """The beds a live booking occupies, as (bed id, "Room / Bed")."""
    rows = db.session.execute(
        select(Bed.id, Room.name, Bed.label).join(Room, Room.id == Bed.room_id)
        .where(Bed.id.in_(select(BedNight.bed_id).where(BedNight.booking_id == booking.id,
                                                        BedNight.state.in_(LIVE_LINE_STATES))))
        .order_by(Room.name, Bed.label, Bed.id)
    )
    return [(bed_id, f"{room} / {label}") for bed_id, room, label in rows]


def current_rooming(booking: Booking) -> dict[int, str]:
    """Who sleeps in each bed of the booking now (member id as text, for a select's default)."""
    return {line.bed_id: str(line.member_id) for line in booking.live_lines if line.member_id is not None}


@dataclass
class CancelLine:
    key: str  # "<bed id>:<night>", what its checkbox sends
    bed: str
    price_ore: int
    back_ore: int  # what the contract's terms give back for it today (refunded on a card, credited on an invoice)


@dataclass
class CancelView:
    nights: list[tuple[date, list[CancelLine]]]  # the booking's live bed-nights, night by night
    refund_ore: int  # cancelling everything that remains today
    credit_ore: int
    current_ore: int  # what the booking is worth after its amendments
    can_choose: bool  # bed-nights may be cancelled one by one (a confirmed booking of more than one)
    terms: ledger.GuestTerms  # the contract's cancellation terms


def cancel_view(booking: Booking, today: date) -> CancelView:
    """The cancel page: each remaining bed-night with its price and its share under the terms today."""
    terms = ledger.guest_terms(booking)
    labels = ({(line["bed_id"], line["night"]): line["bed"] for line in snapshot_of(booking.contract)["lines"]}
              if booking.contract is not None else {})
    nights: dict[date, list[CancelLine]] = {}
    for line in booking.live_lines:
        price = line.price_ore or 0
        nights.setdefault(line.night, []).append(CancelLine(
            f"{line.bed_id}:{line.night.isoformat()}", labels.get((line.bed_id, line.night.isoformat()),
                                                                   str(line.bed_id)),
            price, terms.share_ore(price, today)))
    refund, credit = ledger.guest_cancellation_ore(booking, today)
    live = sum(len(lines) for lines in nights.values())
    return CancelView(sorted(nights.items()), refund, credit, ledger.current_value_ore(booking),
                      booking.status == "confirmed" and booking.contract is not None and live > 1, terms)


@dataclass
class BlockRow:
    bed_id: int
    listing: str
    bed: str
    cells: dict[date, RoomingRow | None] = field(default_factory=dict)


@dataclass
class BlockView:
    nights: list[date]
    rows: list[BlockRow]
    empty_slots: int


def block_view(delegation_id: int) -> BlockView:
    """The delegation's booked beds night by night: who sleeps where, and which booked slots are empty."""
    entries = rooming_rows(delegation_id)
    if not entries:
        return BlockView([], [], 0)
    first, last = min(e.night for e in entries), max(e.night for e in entries)
    nights = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    rows: dict[int, BlockRow] = {}
    for entry in entries:
        row = rows.setdefault(entry.bed_id, BlockRow(entry.bed_id, entry.listing, f"{entry.room} / {entry.bed}"))
        row.cells[entry.night] = entry
    ordered = sorted(rows.values(), key=lambda r: (r.listing, r.bed, r.bed_id))
    return BlockView(nights, ordered, sum(1 for e in entries if e.member_id is None))


@dataclass
class SearchView:
    results: list[ListingResult]
    pages: ResultPages
    proposals: list[Proposal]


def search_view(year: int, form, page: int) -> SearchView:
    """One page of listings with room for the group, and the proposals that spread it over several."""
    check_in, check_out, beds = form.check_in.data, form.check_out.data, form.beds.data
    limits = {"max_walking_minutes": form.max_walking_minutes.data, "max_price_ore": form.max_price_ore}
    pages = ResultPages(page, 0)
    found = search_page(year, check_in, check_out, beds, limit=pages.per_page, offset=pages.offset, **limits)
    return SearchView(found.results, ResultPages(page, found.total), propose(year, check_in, check_out, beds, **limits))
