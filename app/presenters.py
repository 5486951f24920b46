"""Shapes shared by the pages and the API: a listing as the public sees it, ISO dates.

Both doors import from here, never from each other (app.web never imports app.api, nor the reverse).
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.models import BedPrice, Listing, Season
from app.services.links import external_url


def iso(value: date | datetime | None) -> str | None:
    """ISO 8601, or None for a missing value."""
    return value.isoformat() if value is not None else None


def public_listing_json(listing: Listing, season: Season | None, host_record: dict[str, Any]) -> dict[str, Any]:
    """A published listing with its rooms, beds, this season's prices and the host's record."""
    prices: dict[int, int] = {}
    if season is not None:
        prices = {bed_id: price_ore for bed_id, price_ore in db.session.execute(
            select(BedPrice.bed_id, BedPrice.price_ore).where(
                BedPrice.season_id == season.id, BedPrice.bed_id.in_([b.id for b in listing.beds()]))).tuples()}
    return {
        "id": listing.id, "title": listing.title, "description": listing.description,
        "walking_minutes": listing.walking_minutes, "postal_code": listing.postal_code,
        "year": season.year if season else None,
        "url": external_url("public.listing", listing_id=listing.id),
        "host": host_record,
        "rooms": [
            {"id": room.id, "name": room.name,
             "beds": [{"id": bed.id, "label": bed.label, "kind": bed.kind, "price_ore": prices.get(bed.id)}
                      for bed in room.beds]}
            for room in listing.rooms
        ],
    }
