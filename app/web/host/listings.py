"""Host pages for listings: details, rooms, beds, prices, publishing."""
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from app.extensions import db
from app.i18n import kronor_to_ore, ore_to_kronor
from app.models import BedPrice, Listing, utcnow
from app.services import listings, pricing
from app.services.errors import DomainError
from app.services.seasons import current_season
from app.web.common import actor, flash_error, required, role_required
from app.web.formatting import kr
from app.web.host.forms import (
    BedForm,
    ConfirmForm,
    ListingForm,
    PriceForm,
    PublishForm,
    RoomForm,
)
from app.web.host.routes import bp


def _listing_values(form: ListingForm) -> dict:
    return {"title": form.title.data, "description": form.description.data or "", "address": form.address.data,
            "postal_code": form.postal_code.data, "walking_minutes": form.walking_minutes.data}


def _bed_prices(listing: Listing, season) -> dict[int, dict]:
    """Each bed's price this season and the highest price the pricing service would allow now."""
    if season is None:
        return {}
    bed_ids = [bed.id for bed in listing.beds()]
    current = dict(db.session.execute(select(BedPrice.bed_id, BedPrice.price_ore).where(
        BedPrice.season_id == season.id, BedPrice.bed_id.in_(bed_ids))).tuples().all())
    now = utcnow()
    return {bed_id: {"price_ore": current.get(bed_id),
                     "max_allowed_ore": pricing.check_price(bed_id, season, 1, now).max_allowed_ore}
            for bed_id in bed_ids}


def render_listing(listing: Listing, status: int = 200, *, room_form=None, bed_forms=None, price_forms=None,
                   publish_form=None):
    """The listing's management page; a failed form is passed in to show its errors."""
    season = current_season()
    prices = _bed_prices(listing, season)
    beds_forms = {room.id: BedForm(formdata=None, prefix=f"room-{room.id}") for room in listing.rooms}
    beds_forms.update(bed_forms or {})
    prices_forms = {bed_id: PriceForm(formdata=None, prefix=f"bed-{bed_id}", price=ore_to_kronor(p["price_ore"]))
                    for bed_id, p in prices.items()}
    prices_forms.update(price_forms or {})
    publish = publish_form or PublishForm(formdata=None, terms_version=season.terms_version if season else "")
    return render_template(
        "host/listing.html", listing=listing, season=season, season_open=bool(season and season.is_open(utcnow())),
        prices=prices,
        room_form=room_form or RoomForm(formdata=None, prefix="room"), bed_forms=beds_forms,
        price_forms=prices_forms, publish_form=publish, confirm_form=ConfirmForm(formdata=None),
    ), status


@bp.get("/listings")
@role_required("host")
def listings_index():
    """List the host's listings."""
    rows = db.session.scalars(select(Listing).where(Listing.host_id == current_user.id)
                              .order_by(Listing.created_at, Listing.id)).all()
    return render_template("host/listings.html", listings=rows)


@bp.route("/listings/new", methods=["GET", "POST"])
@role_required("host")
def listing_new():
    """Create a draft listing."""
    form = ListingForm()
    if form.validate_on_submit():
        try:
            listing = listings.create_listing(actor(), **_listing_values(form))
        except DomainError as error:
            flash_error(error, form)
            return render_template("host/listing_form.html", form=form, listing=None), error.status
        flash(_("Boendet är skapat som utkast. Lägg till rum och bäddar."), "success")
        return redirect(url_for("host.listing_page", listing_id=listing.id))
    status = 422 if request.method == "POST" else 200
    return render_template("host/listing_form.html", form=form, listing=None), status


@bp.get("/listings/<int:listing_id>")
@role_required("host")
def listing_page(listing_id):
    """Manage one listing: rooms, beds, prices, publishing."""
    return render_listing(listings.owned_listing(actor(), listing_id))


@bp.route("/listings/<int:listing_id>/edit", methods=["GET", "POST"])
@role_required("host")
def listing_edit(listing_id):
    """Edit a listing's details."""
    listing = listings.owned_listing(actor(), listing_id)
    form = ListingForm(obj=listing)
    if form.validate_on_submit():
        try:
            listings.update_listing(actor(), listing_id, **_listing_values(form))
        except DomainError as error:
            flash_error(error, form)
            return render_template("host/listing_form.html", form=form, listing=listing), error.status
        flash(_("Ändringarna är sparade."), "success")
        return redirect(url_for("host.listing_page", listing_id=listing_id))
    status = 422 if request.method == "POST" else 200
    return render_template("host/listing_form.html", form=form, listing=listing), status


@bp.post("/listings/<int:listing_id>/rooms")
@role_required("host")
def add_room(listing_id):
    """Add a room to a listing."""
    listing = listings.owned_listing(actor(), listing_id)
    form = RoomForm(prefix="room")
    if not form.validate_on_submit():
        return render_listing(listing, 422, room_form=form)
    try:
        listings.add_room(actor(), listing_id, form.name.data)
    except DomainError as error:
        flash_error(error, form)
        return render_listing(listing, error.status, room_form=form)
    flash(_("Rummet är tillagt."), "success")
    return redirect(url_for("host.listing_page", listing_id=listing_id, _anchor="rooms"))


@bp.post("/rooms/<int:room_id>/beds")
@role_required("host")
def add_bed(room_id):
    """Add a bed to a room."""
    room = listings.owned_room(actor(), room_id)
    form = BedForm(prefix=f"room-{room_id}")
    if not form.validate_on_submit():
        return render_listing(room.listing, 422, bed_forms={room_id: form})
    try:
        listings.add_bed(actor(), room_id, form.label.data, form.kind.data)
    except DomainError as error:
        flash_error(error, form)
        return render_listing(room.listing, error.status, bed_forms={room_id: form})
    flash(_("Bädden är tillagd. Sätt ett pris på den."), "success")
    return redirect(url_for("host.listing_page", listing_id=room.listing_id, _anchor=f"room-{room_id}"))


@bp.post("/beds/<int:bed_id>/price")
@role_required("host")
def set_price(bed_id):
    """Set a bed's price for the latest season; a refusal shows the highest allowed price."""
    bed = listings.owned_bed(actor(), bed_id)
    form, season = PriceForm(prefix=f"bed-{bed_id}"), current_season()
    if not form.validate_on_submit() or season is None:
        form.price.errors = list(form.price.errors) or [_("Det finns ingen säsong att sätta pris för ännu.")]
        return render_listing(bed.room.listing, 422, price_forms={bed_id: form})
    try:
        pricing.set_price(actor(), bed_id, season.year, kronor_to_ore(required(form.price.data)))
    except DomainError as error:
        form.price.errors = [error.message]
        if "max_allowed_ore" in error.facts:
            form.price.errors.append(_("Högsta tillåtna pris: %(price)s per natt.",
                                       price=kr(error.facts["max_allowed_ore"])))
        return render_listing(bed.room.listing, error.status, price_forms={bed_id: form})
    flash(_("Priset för %(bed)s är sparat.", bed=bed.label), "success")
    return redirect(url_for("host.listing_page", listing_id=bed.room.listing_id, _anchor=f"bed-{bed_id}"))


@bp.post("/listings/<int:listing_id>/publish")
@role_required("host")
def publish(listing_id):
    """Publish the listing: the host accepts the season's terms as a binding standing offer."""
    listing = listings.owned_listing(actor(), listing_id)
    form = PublishForm()
    if not form.validate_on_submit():
        return render_listing(listing, 422, publish_form=form)
    try:
        listings.publish(actor(), listing_id, form.terms_version.data if form.accept_terms.data else None)
    except DomainError as error:
        if error.code == "terms_not_accepted":
            form.accept_terms.errors = [error.message]
        else:
            flash_error(error, form)
        return render_listing(listing, error.status, publish_form=form)
    flash(_("Boendet är publicerat. Ditt anbud gäller nu enligt villkoren."), "success")
    return redirect(url_for("host.listing_page", listing_id=listing_id))


@bp.post("/listings/<int:listing_id>/unpublish")
@role_required("host")
def unpublish(listing_id):
    """Hide the listing from search; existing contracts stand."""
    listing = listings.owned_listing(actor(), listing_id)
    if not ConfirmForm().validate_on_submit():
        return render_listing(listing, 400)
    try:
        listings.unpublish(actor(), listing_id)
    except DomainError as error:
        flash_error(error)
        return render_listing(listing, error.status)
    flash(_("Boendet är avpublicerat. Befintliga avtal gäller fortfarande."), "info")
    return redirect(url_for("host.listing_page", listing_id=listing_id))


@bp.route("/rooms/<int:room_id>", methods=["GET", "POST"])
@role_required("host")
def room(room_id):
    """Rename a room, rename or remove its beds, or remove the room."""
    item = listings.owned_room(actor(), room_id)
    form = RoomForm(obj=item, prefix="room") if request.method == "GET" else RoomForm(prefix="room")
    status = 200 if request.method == "GET" else 422
    if form.validate_on_submit():
        try:
            listings.rename_room(actor(), room_id, form.name.data)
        except DomainError as error:
            flash_error(error, form)
            status = error.status
        else:
            flash(_("Rummet heter nu %(name)s.", name=form.name.data.strip()), "success")
            return redirect(url_for("host.listing_page", listing_id=item.listing_id))
    return _render_room(item, form, status)


def _render_room(item, form=None, status=200, bed_forms=None):
    forms = {b.id: BedForm(formdata=None, obj=b, prefix=f"bed-{b.id}") for b in item.beds}
    forms.update(bed_forms or {})
    return render_template("host/room.html", room=item, form=form or RoomForm(formdata=None, obj=item, prefix="room"),
                           bed_forms=forms, confirm_form=ConfirmForm(formdata=None)), status


@bp.post("/beds/<int:bed_id>/rename")
@role_required("host")
def rename_bed(bed_id):
    bed = listings.owned_bed(actor(), bed_id)
    form = BedForm(prefix=f"bed-{bed_id}")
    if form.validate_on_submit():
        try:
            listings.rename_bed(actor(), bed_id, form.label.data, form.kind.data)
        except DomainError as error:
            flash_error(error, form)
            return _render_room(bed.room, status=error.status, bed_forms={bed_id: form})
        flash(_("Bädden är sparad."), "success")
        return redirect(url_for("host.room", room_id=bed.room_id))
    return _render_room(bed.room, status=422, bed_forms={bed_id: form})


@bp.post("/beds/<int:bed_id>/remove")
@role_required("host")
def remove_bed(bed_id):
    bed = listings.owned_bed(actor(), bed_id)
    room_id = bed.room_id
    if ConfirmForm().validate_on_submit():
        try:
            kept = listings.remove_bed(actor(), bed_id)
        except DomainError as error:
            flash(error.message, "error")
            return _render_room(bed.room, status=error.status)
        flash(_("Bädden är borttagen. Dess tidigare bokningar och avtal finns kvar.") if kept
              else _("Bädden är borttagen."), "success")
    return redirect(url_for("host.room", room_id=room_id))


@bp.post("/rooms/<int:room_id>/remove")
@role_required("host")
def remove_room(room_id):
    item = listings.owned_room(actor(), room_id)
    listing_id = item.listing_id
    if ConfirmForm().validate_on_submit():
        try:
            kept = listings.remove_room(actor(), room_id)
        except DomainError as error:
            flash(error.message, "error")
            return _render_room(item, status=error.status)
        flash(_("Rummet är borttaget. Dess tidigare bokningar och avtal finns kvar.") if kept
              else _("Rummet är borttaget."), "success")
        return redirect(url_for("host.listing_page", listing_id=listing_id))
    return redirect(url_for("host.room", room_id=room_id))
