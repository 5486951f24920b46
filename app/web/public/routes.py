"""Public pages: home, listing pages, contract verification, calendars."""
from flask import Blueprint, Response, abort, render_template, request
from sqlalchemy import select

from app.extensions import db
from app.models import Listing
from app.presenters import public_listing_json
from app.services import availability, contracts, listings
from app.services.booking import host_record
from app.services.seasons import current_season

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
    """Every published listing."""
    rows = db.session.scalars(select(Listing).where(Listing.published.is_(True)).order_by(Listing.walking_minutes))
    visible, season = [r for r in rows if listings.is_publicly_visible(r)], current_season()
    return render_template("public/browse.html", listings=visible, season=season,
                           summaries=availability.listing_summaries(season, [r.id for r in visible]))


def _ics(feed: bytes | None):
    if feed is None:
        abort(404)
    return Response(feed, mimetype="text/calendar", headers={"Content-Type": "text/calendar; charset=utf-8"})
