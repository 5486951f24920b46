"""Public pages: home, listing pages, contract verification, members' itineraries, calendars."""
from flask import Blueprint, Response, abort, make_response, render_template, request

from app.extensions import db
from app.models import Listing
from app.presenters import public_listing_json
from app.services import availability, contracts, itineraries, listings
from app.services.booking import host_record
from app.services.errors import DomainError
from app.services.seasons import current_season
from app.web.common import ResultPages, flash_error, page_number, required
from app.web.coordinator.forms import SearchForm

bp = Blueprint("public", __name__)


@bp.get("/")
def home():
    """Explain the promise and show the season."""
    return render_template("public/home.html", season=current_season())


@bp.get("/listings/<int:listing_id>")
def listing(listing_id):
    """A published listing with rooms, beds, prices and the host's record."""
    item = db.session.get(Listing, listing_id)
    if item is None or not listings.is_publicly_visible(item):
        abort(404)
    season = current_season()
    data = public_listing_json(item, season, host_record(item.host_id))
    return render_template("public/listing.html", listing=item, data=data, season=season)


@bp.get("/contracts/verify")
def verify_contract():
    """Verify a contract by number and SHA-256."""
    number, sha = request.args.get("number", ""), request.args.get("sha256", "")
    result = contracts.verify(number, sha) if number or sha else None
    return render_template("public/verify.html", number=number, sha256=sha, result=result)


@bp.get("/itinerary/<token>")
def itinerary(token):
    """A member's itinerary behind their private link (no sign-in): where they sleep and whom to ask."""
    member = itineraries.member_by_token(token)
    if member is None:
        abort(404)
    response = make_response(render_template("public/itinerary.html", itinerary=itineraries.itinerary(member)))
    # A private page: never indexed, never kept by a browser or proxy, and its address never sent on as Referer.
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/calendar/host/<token>.ics")
def host_calendar(token):
    """A host's bookings as an iCalendar feed (secret URL)."""
    from app.services.calendars import host_feed
    return _ics(host_feed(token))


@bp.get("/calendar/delegation/<token>.ics")
def delegation_calendar(token):
    """A delegation's stays as an iCalendar feed (secret URL)."""
    from app.services.calendars import delegation_feed
    return _ics(delegation_feed(token))


@bp.get("/listings")
def browse():
    """Published listings, 20 a page; with a stay, those with room for it, with free beds and price for the stay."""
    season, form, status = current_season(), SearchForm(request.args), 200
    pages, found = ResultPages(page_number(), 0), None
    if season is not None and request.args.get("check_in"):
        if form.validate():
            try:
                found = availability.search_page(
                    season.year, form.check_in.data, form.check_out.data, required(form.beds.data),
                    limit=pages.per_page, offset=pages.offset, max_walking_minutes=form.max_walking_minutes.data,
                    max_price_ore=form.max_price_ore)
            except DomainError as error:
                flash_error(error, form)
                status = error.status
        else:
            status = 422
    if found is not None:
        return render_template("public/browse.html", season=season, form=form, found=found,
                               pages=ResultPages(pages.page, found.total)), status
    visible, total = listings.visible_page(pages.offset, pages.per_page)
    return render_template("public/browse.html", listings=visible, season=season, form=form, found=None,
                           pages=ResultPages(pages.page, total),
                           summaries=availability.listing_summaries(season, [r.id for r in visible])), status


def _ics(feed: bytes | None):
    if feed is None:
        abort(404)
    return Response(feed, mimetype="text/calendar", headers={"Content-Type": "text/calendar; charset=utf-8"})
