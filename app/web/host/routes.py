"""Host pages: start page and vetting details (listings and bookings live beside this module)."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from app.extensions import db
from app.models import HostProfile, Listing
from app.services import vetting
from app.services.errors import DomainError
from app.services.links import external_url
from app.services.seasons import current_season
from app.web.common import actor, flash_error, role_required
from app.web.host.forms import ProfileForm

bp = Blueprint("host", __name__, url_prefix="/host")


def own_profile() -> HostProfile | None:
    return db.session.get(HostProfile, current_user.id)


@bp.get("/")
@role_required("host")
def dashboard():
    """Show vetting status, strikes, listings, the calendar feed and the next steps."""
    profile = own_profile()
    own_listings = db.session.scalars(select(Listing).where(Listing.host_id == current_user.id)
                                      .order_by(Listing.created_at, Listing.id)).all()
    feed_url = external_url("public.host_calendar", token=profile.calendar_token) if profile else None
    return render_template("host/dashboard.html", profile=profile, listings=own_listings, feed_url=feed_url,
                           season=current_season(), strike_limit=vetting.strike_limit())


@bp.route("/profile", methods=["GET", "POST"])
@role_required("host")
def profile():
    """Submit or update the vetting details."""
    existing = own_profile()
    form = ProfileForm(obj=existing)
    if form.validate_on_submit():
        try:
            vetting.submit_profile(actor(), legal_name=form.legal_name.data, phone=form.phone.data,
                                   address=form.address.data, postal_code=form.postal_code.data,
                                   right_to_rent=form.right_to_rent.data,
                                   organisation_number=form.organisation_number.data,
                                   vat_number=form.vat_number.data,
                                   vat_rate_pct=int(form.vat_rate_pct.data) if form.vat_rate_pct.data else None)
        except DomainError as error:
            flash_error(error, form)
            return render_template("host/profile.html", form=form, profile=existing), error.status
        flash(_("Tack! Dina uppgifter är skickade och granskas av Sängplats."), "success")
        return redirect(url_for("host.dashboard"))
    status = 422 if request.method == "POST" else 200
    return render_template("host/profile.html", form=form, profile=existing), status


# At the bottom: these modules import `bp` from this one to register their views on it.
from app.web.host import bookings, hearing, listings  # noqa: E402,F401
