"""Binding contracts: the canonical snapshot, its SHA-256, numbering and verification; the amendments appended
beside a contract (which itself never changes)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import Amendment, Booking, Contract, Counter, Delegation, HostProfile, Listing, Season, User
from app.services.errors import NotFound


def canonical_json(data: dict[str, Any]) -> str:
    """One byte-exact form of a snapshot: sorted keys, no spaces, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(snapshot: str) -> str:
    return hashlib.sha256(snapshot.encode("utf-8")).hexdigest()


def next_number(series: str, year: int) -> int:
    """Take the next number of a gap-free series inside the caller's transaction."""
    value = db.session.execute(
        update(Counter).where(Counter.name == f"{series}:{year}").values(value=Counter.value + 1)
        .returning(Counter.value)
    ).scalar_one_or_none()
    if value is None:  # a season made before counters existed; create the series
        db.session.add(Counter(name=f"{series}:{year}", value=1))
        db.session.flush()
        value = 1
    return value


@dataclass(frozen=True)
class ContractDraft:
    """Everything a contract says that is known before the bed-nights are taken, as plain values.

    Prepared before the booking's write transaction so that the write lock is held only for the
    inserts; the number, the stay, the total and the payment terms are added when it is formed.
    """

    season_id: int
    year: int
    terms_version: str
    host_offer_accepted_at: datetime | None
    coordinator_id: int
    accepted_at: datetime
    ip: str | None
    parts: dict[str, Any]
    # When the contract is formed, if later than the coordinator's acceptance (the allocation draw forms the
    # contract its request accepted in advance); None: at the acceptance.
    formed_at: datetime | None = None


def prepare_contract(season: Season, listing: Listing, *, delegation_id: int, coordinator_id: int,
                     lines: list[dict], accepted_at: datetime, ip: str | None,
                     formed_at: datetime | None = None) -> ContractDraft:
    """Read the parties, the property and the terms for a contract (no writes)."""
    host_profile = db.session.get(HostProfile, listing.host_id)
    host_user = db.session.get_one(User, listing.host_id)
    delegation = db.session.get_one(Delegation, delegation_id)
    coordinator = db.session.get_one(User, coordinator_id)
    parts = {
        "version": 1,
        "season": {"year": season.year, "name": season.name},
        "terms": {"version": season.terms_version, "text": season.terms_text},
        "parties": {
            "host": {"user_id": host_user.id, "legal_name": host_profile.legal_name if host_profile else host_user.name,
                     "address": host_profile.address if host_profile else None,
                     "postal_code": host_profile.postal_code if host_profile else None},
            "coordinator": {"user_id": coordinator.id, "name": coordinator.name, "email": coordinator.email},
            "organisation": {"delegation_id": delegation.id, "name": delegation.name,
                             "organisation_number": delegation.organisation_number},
        },
        "property": {"listing_id": listing.id, "title": listing.title, "address": listing.address,
                     "postal_code": listing.postal_code, "walking_minutes": listing.walking_minutes},
        "lines": lines,
        "currency": "SEK",
        "cancellation": {
            "guest_free_until": season.free_cancellation_until.isoformat(),
            "guest_late_refund_pct": season.late_cancellation_refund_pct,
            "host_cancellation": "breach: full refund to the coordinator, beds locked for the stay, a strike",
        },
        "host_offer_accepted_at": listing.offer_accepted_at.isoformat() if listing.offer_accepted_at else None,
        "host_offer_terms_version": listing.accepted_terms_version,
        "coordinator_acceptance": {"at": accepted_at.isoformat(), "actor_id": coordinator.id, "ip": ip},
    }
    return ContractDraft(season.id, season.year, season.terms_version, listing.offer_accepted_at, coordinator.id,
                         accepted_at, ip, parts, formed_at)


def form_contract(booking: Booking, draft: ContractDraft) -> Contract:
    """Number the contract and create its immutable row in the booking's transaction (flush only)."""
    seq = next_number("contract", draft.year)
    number = f"SP-{draft.year}-{seq:06d}"
    snapshot = canonical_json({
        **draft.parts,
        "number": number,
        "stay": {"check_in": booking.check_in.isoformat(), "check_out": booking.check_out.isoformat()},
        "total_ore": booking.total_ore,
        "payment": {"method": booking.payment_method, "invoice_number": booking.invoice_number,
                    "invoice_due_on": booking.invoice_due_on.isoformat() if booking.invoice_due_on else None},
    })
    contract = Contract(
        booking_id=booking.id, season_id=draft.season_id, seq=seq, number=number, version=1,
        terms_version=draft.terms_version, snapshot=snapshot, sha256=digest(snapshot),
        host_offer_accepted_at=draft.host_offer_accepted_at or draft.accepted_at,
        coordinator_accepted_at=draft.accepted_at, coordinator_actor_id=draft.coordinator_id,
        coordinator_ip=draft.ip, created_at=draft.formed_at or draft.accepted_at,
    )
    db.session.add(contract)
    db.session.flush()
    return contract


@dataclass(frozen=True)
class Verification:
    """What verifying a contract tells anyone: genuine or not, and, when genuine, where its booking stands."""

    valid: bool
    status: str | None = None  # the booking's status, only for a genuine contract
    amended: bool = False  # amendments were appended beside it (the contract itself, and its hash, never change)

    def as_json(self) -> dict[str, Any]:
        return {"valid": self.valid, "status": self.status, "amended": self.amended}


def verify(number: str, sha256: str) -> Verification:
    """A contract with this number whose stored snapshot still hashes to sha256 is valid; the answer then
    also says the booking's status, so a cancelled booking's contract never reads as simply "genuine"."""
    contract = db.session.scalar(select(Contract).where(Contract.number == (number or "").strip()))
    if contract is None or not sha256:
        return Verification(False)
    if not digest(contract.snapshot) == contract.sha256 == sha256.strip().lower():
        return Verification(False)
    return Verification(True, contract.booking.status, is_amended(contract.id))


def snapshot_of(contract: Contract) -> dict[str, Any]:
    return json.loads(contract.snapshot)


def contract_status(contract: Contract) -> str:
    status = contract.booking.status
    return {"awaiting_payment": "pending_payment", "confirmed": "active", "completed": "fulfilled"}.get(
        status, status)


def get_contract(contract_id: int) -> Contract:
    contract = db.session.get(Contract, contract_id)
    if contract is None:
        raise NotFound(_("Avtalet finns inte."))
    return contract


# ---------------------------------------------------------------------------------------------
# Amendments: appended beside the contract, never changing it
# ---------------------------------------------------------------------------------------------


def is_amended(contract_id: int) -> bool:
    return db.session.scalar(select(Amendment.id).where(Amendment.contract_id == contract_id).limit(1)) is not None


def add_amendment(contract: Contract, *, kind: str, lines: list[dict], refund_ore: int, invoice_credit_ore: int,
                  actor_id: int | None, now: datetime) -> Amendment:
    """Append the contract's next amendment, "<contract number>-A<n>" (flush only). The caller holds the booking's
    row lock, which makes the series gap-free; UNIQUE (contract_id, seq) refuses a second writer regardless."""
    seq = (db.session.scalar(select(func.max(Amendment.seq)).where(Amendment.contract_id == contract.id)) or 0) + 1
    amendment = Amendment(
        contract_id=contract.id, booking_id=contract.booking_id, seq=seq, number=f"{contract.number}-A{seq}",
        kind=kind, lines=[{"bed_id": line["bed_id"], "bed": line.get("bed"), "night": line["night"],
                           "price_ore": line["price_ore"]} for line in lines],
        lines_ore=sum(line["price_ore"] for line in lines), refund_ore=refund_ore,
        invoice_credit_ore=invoice_credit_ore, actor_id=actor_id, at=now)
    db.session.add(amendment)
    db.session.flush()
    return amendment


def amendments_of(contract_id: int) -> list[Amendment]:
    return list(db.session.scalars(select(Amendment).where(Amendment.contract_id == contract_id)
                                   .order_by(Amendment.seq)))
