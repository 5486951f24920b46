"""Listings, rooms, beds, prices and blocks."""
from flask import g, request
from flask_babel import gettext as _
from sqlalchemy import select

from app.api import api
from app.api.common import Body, current_actor, json_body, query_int, roles
from app.api.serializers import bed_json, listing_json, room_json
from app.extensions import db
from app.models import Listing
from app.presenters import iso, public_listing_json
from app.services import booking, inventory, listings, pricing
from app.services.errors import NotFound, ValidationFailed
from app.services.seasons import current_season, season_or_404


def _listing_body() -> dict:
    body = Body(json_body())
    values = {"title": body.str("title", max_length=200), "description": body.str("description", False, 5000) or "",
              "address": body.str("address", max_length=300), "postal_code": body.str("postal_code", max_length=10),
              "walking_minutes": body.int("walking_minutes")}
    body.done()
    return values


@api.post("/listings")
@roles("host")
def create_listing():
    """Create a draft listing."""
    return listing_json(listings.create_listing(current_actor(), **_listing_body())), 201


@api.get("/host/listings")
@roles("host")
def my_listings():
    """The host's own listings."""
    rows = db.session.scalars(select(Listing).where(Listing.host_id == current_actor().user_id).order_by(Listing.id))
    return {"listings": [listing_json(listing) for listing in rows]}


@api.put("/listings/<int:listing_id>")
@roles("host")
def update_listing(listing_id):
    """Edit a listing's description."""
    listings.owned_listing(current_actor(), listing_id)
    return listing_json(listings.update_listing(current_actor(), listing_id, **_listing_body()))


@api.post("/listings/<int:listing_id>/rooms")
@roles("host")
def add_room(listing_id):
    """Add a room."""
    listings.owned_listing(current_actor(), listing_id)
    body = Body(json_body())
    name = body.str("name", max_length=120)
    body.done()
    return room_json(listings.add_room(current_actor(), listing_id, name)), 201


@api.post("/rooms/<int:room_id>/beds")
@roles("host")
def add_bed(room_id):
    """Add a bed place to a room."""
    listings.owned_room(current_actor(), room_id)
    body = Body(json_body())
    label, kind = body.str("label", max_length=120), body.str("kind", max_length=20)
    body.done()
    return bed_json(listings.add_bed(current_actor(), room_id, label, kind)), 201


@api.patch("/rooms/<int:room_id>")
@roles("host")
def rename_room(room_id):
    """Rename a room."""
    listings.owned_room(current_actor(), room_id)
    body = Body(json_body())
    name = body.str("name", max_length=120)
    body.done()
    room = listings.rename_room(current_actor(), room_id, name)
    return {"id": room.id, "listing_id": room.listing_id, "name": room.name}


@api.delete("/rooms/<int:room_id>")
@roles("host")
def remove_room(room_id):
    """Remove a room and its beds, when no live booking occupies them (history stays)."""
    listings.owned_room(current_actor(), room_id)
    kept = listings.remove_room(current_actor(), room_id)
    return {"id": room_id, "removed": True, "kept_for_history": kept}


@api.patch("/beds/<int:bed_id>")
@roles("host")
def rename_bed(bed_id):
    """Rename a bed or change its kind."""
    listings.owned_bed(current_actor(), bed_id)
    body = Body(json_body())
    label, kind = body.str("label", False, max_length=120), body.str("kind", False, max_length=20)
    body.done()
    return bed_json(listings.rename_bed(current_actor(), bed_id, label, kind))


@api.delete("/beds/<int:bed_id>")
@roles("host")
def remove_bed(bed_id):
    """Remove a bed that no live booking occupies (a bed with history is kept out of sight)."""
    listings.owned_bed(current_actor(), bed_id)
    kept = listings.remove_bed(current_actor(), bed_id)
    return {"id": bed_id, "removed": True, "kept_for_history": kept}


@api.put("/beds/<int:bed_id>/prices/<int:year>")
@roles("host")
def set_price(bed_id, year):
    """Set a bed's price per night for a season, within the caps."""
    listings.owned_bed(current_actor(), bed_id)
    season_or_404(year)
    body = Body(json_body())
    price_ore = body.int("price_ore", minimum=1, maximum=100_000_000)
    body.done()
    row = pricing.set_price(current_actor(), bed_id, year, price_ore)
    return {"bed_id": bed_id, "year": year, "price_ore": row.price_ore}


@api.post("/listings/<int:listing_id>/publish")
@roles("host")
def publish(listing_id):
    """Publish: accept the season's terms, a binding standing offer."""
    listings.owned_listing(current_actor(), listing_id)
    data = request.get_json(silent=True)
    data = data if isinstance(data, dict) else {}
    version = data.get("accept_terms_version")
    if version is not None and not isinstance(version, str):
        version = None
    listing = listings.publish(current_actor(), listing_id, version)
    return {**listing_json(listing), "offer_accepted_at": iso(listing.offer_accepted_at)}


@api.post("/listings/<int:listing_id>/unpublish")
@roles("host")
def unpublish(listing_id):
    """Take a listing out of search; contracts stand."""
    listings.owned_listing(current_actor(), listing_id)
    return listing_json(listings.unpublish(current_actor(), listing_id))


@api.get("/listings/<int:listing_id>")
def get_listing(listing_id):
    """A published listing with its rooms, beds and prices for a season."""
    listing = db.session.get(Listing, listing_id)
    user = g.get("api_user")
    is_owner = user is not None and listing is not None and (user.id == listing.host_id or user.role == "admin")
    if listing is None or not (is_owner or listings.is_publicly_visible(listing)):
        raise NotFound(_("Boendet finns inte."))
    errors: dict = {}
    year = query_int("year", False, errors)
    if errors:
        raise ValidationFailed(errors)
    season = current_season() if year is None else season_or_404(year)
    return public_listing_json(listing, season, booking.host_record(listing.host_id))


@api.post("/beds/<int:bed_id>/blocks")
@roles("host")
def block_bed(bed_id):
    """Block the host's own free nights of a bed."""
    listings.owned_bed(current_actor(), bed_id)
    body = Body(json_body())
    check_in, check_out = body.date("check_in"), body.date("check_out")
    body.done()
    rows = inventory.block_nights(current_actor(), bed_id, check_in, check_out)
    return {"bed_id": bed_id, "nights": [iso(r.night) for r in rows], "state": "host_block"}, 201
