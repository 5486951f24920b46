"""Turning models into the API's JSON shapes."""
from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from app.extensions import db
from app.models import (
    Amendment,
    Bed,
    Booking,
    Contract,
    Flag,
    FlagAppeal,
    HostProfile,
    Listing,
    Payment,
    Room,
    Season,
    User,
)
from app.presenters import iso
from app.services import flags as flags_service
from app.services.base import local_date, now_or
from app.services.contracts import amendments_of, contract_status, snapshot_of
from app.services.invoices import booking_invoice_json
from app.services.links import external_url
from app.services.seasons import SEASON_FIELDS

if TYPE_CHECKING:
    from app.services.cancellations import GuestCancellation


def user_json(user: User) -> dict:
    return {"id": user.id, "email": user.email, "name": user.name, "role": user.role}


def host_json(profile: HostProfile) -> dict:
    return {
        "organisation_number": profile.organisation_number, "vat_number": profile.vat_number,
        "vat_rate_pct": profile.vat_rate_pct,
        "user_id": profile.user_id, "legal_name": profile.legal_name, "phone": profile.phone,
        "address": profile.address, "postal_code": profile.postal_code, "right_to_rent": profile.right_to_rent,
        "vetting_status": profile.vetting_status, "strikes": profile.strikes,
        "submitted_at": iso(profile.submitted_at), "verified_since": iso(profile.verified_since),
        "decision_reason": profile.decision_reason,
    }


def season_json(season: Season) -> dict:
    data = {}
    for field in SEASON_FIELDS:
        value = getattr(season, field)
        data[field] = iso(value) if hasattr(value, "isoformat") else value
    data["check_out_last"] = season.check_out_day.isoformat()
    return data


def listing_json(listing: Listing) -> dict:
    return {
        "id": listing.id, "host_id": listing.host_id, "title": listing.title, "description": listing.description,
        "address": listing.address, "postal_code": listing.postal_code, "walking_minutes": listing.walking_minutes,
        "published": listing.published, "accepted_terms_version": listing.accepted_terms_version,
        "url": external_url("public.listing", listing_id=listing.id),
    }


def room_json(room: Room) -> dict:
    return {"id": room.id, "listing_id": room.listing_id, "name": room.name}


def bed_json(bed: Bed) -> dict:
    return {"id": bed.id, "room_id": bed.room_id, "label": bed.label, "kind": bed.kind}


def payment_json(payment: Payment) -> dict:
    from app.services.ledger import refunded_ore_for_payment
    return {"payment_intent_id": payment.stripe_payment_intent_id, "status": payment.status,
            "amount_ore": payment.amount_ore, "refunded_ore": refunded_ore_for_payment(payment.id)}


def contract_summary(contract: Contract | None) -> dict | None:
    if contract is None:
        return None
    return {"id": contract.id, "number": contract.number, "sha256": contract.sha256}


def booking_json(booking: Booking) -> dict:
    payments = db.session.scalars(select(Payment).where(Payment.booking_id == booking.id).order_by(Payment.id))
    return {
        "id": booking.id, "status": booking.status, "delegation_id": booking.delegation_id,
        "listing_id": booking.listing_id, "host_id": booking.host_id, "order_id": booking.order_id,
        "total_ore": booking.total_ore,
        "refund_ore": booking.refund_ore, "check_in": iso(booking.check_in), "check_out": iso(booking.check_out),
        "payment_method": booking.payment_method, "expires_at": iso(booking.expires_at),
        "created_at": iso(booking.created_at),
        "lines": [{"bed_id": line.bed_id, "night": iso(line.night), "price_ore": line.price_ore,
                   "member_id": line.member_id, "state": line.state} for line in booking.lines],
        "contract": contract_summary(booking.contract),
        "invoice": booking_invoice_json(booking, local_date(now_or(None))),
        "payments": [payment_json(p) for p in payments],
        "rehoused_from_id": booking.rehoused_from_id,
    }


def amendment_json(amendment: Amendment) -> dict:
    return {"number": amendment.number, "at": iso(amendment.at), "kind": amendment.kind,
            "lines": [{"bed_id": line["bed_id"], "bed": line.get("bed"), "night": line["night"],
                       "price_ore": line["price_ore"]} for line in amendment.lines],
            "lines_ore": amendment.lines_ore, "refund_ore": amendment.refund_ore,
            "invoice_credit_ore": amendment.invoice_credit_ore}


def cancellation_json(done: GuestCancellation) -> dict:
    """A guest cancellation's answer: the booking's status, this cancellation's refund (and credit), its lines."""
    return {"id": done.booking.id, "status": done.booking.status, "refund_ore": done.refund_ore,
            "invoice_credit_ore": done.invoice_credit_ore,
            "cancelled_lines": [{"bed_id": line["bed_id"], "night": line["night"], "price_ore": line["price_ore"]}
                                for line in done.lines],
            "amendment": amendment_json(done.amendment) if done.amendment else None}


def contract_json(contract: Contract) -> dict:
    snapshot = snapshot_of(contract)
    return {
        "id": contract.id, "number": contract.number, "version": contract.version, "sha256": contract.sha256,
        "terms_version": contract.terms_version, "booking_id": contract.booking_id,
        "parties": snapshot["parties"], "property": snapshot["property"], "stay": snapshot["stay"],
        "lines": snapshot["lines"], "total_ore": snapshot["total_ore"],
        "host_offer_accepted_at": iso(contract.host_offer_accepted_at),
        "coordinator_accepted_at": iso(contract.coordinator_accepted_at),
        "status": contract_status(contract), "snapshot": snapshot,
        "amendments": [amendment_json(amendment) for amendment in amendments_of(contract.id)],
        "pdf_url": external_url("api.contract_pdf", contract_id=contract.id),
    }


def flag_json(flag: Flag) -> dict:
    return {
        "id": flag.id, "host_id": flag.host_id, "booking_id": flag.booking_id, "category": flag.category,
        "description": flag.description, "status": flag.status, "source": flag.source,
        "created_at": iso(flag.created_at), "resolution": flag.resolution, "resolved_at": iso(flag.resolved_at),
        "strike_given": flag.strike_given,
        "response": flag.response, "responded_at": iso(flag.responded_at),
        "appeal": appeal_json(flags_service.appeal_of(flag.id)),
    }


def appeal_json(appeal: FlagAppeal | None) -> dict | None:
    if appeal is None:
        return None
    return {"id": appeal.id, "text": appeal.text, "status": appeal.status, "created_at": iso(appeal.created_at),
            "decided_at": iso(appeal.decided_at), "note": appeal.note}


def host_flag_json(flag: Flag) -> dict:
    """A flag as the host it is about sees it (API.md "When a host breaks the contract")."""
    return {"id": flag.id, "category": flag.category, "description": flag.description, "status": flag.status,
            "response": flag.response, "decision": None if flag.status == "open" else flag.status,
            "statement_of_reasons": flag.resolution, "created_at": iso(flag.created_at),
            "response_closes_at": iso(flags_service.response_closes_at(flag)),
            "appeal": appeal_json(flags_service.appeal_of(flag.id))}
