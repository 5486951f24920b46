"""Admin pages: start page and the vetting queue (seasons, flags and the audit log live beside this module)."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from app.extensions import db
from app.labels import in_sentence
from app.models import VETTING_STATUSES, Booking, Flag, HostProfile, Listing, Season, User
from app.services import vetting
from app.services.errors import DomainError
from app.services.seasons import current_season
from app.web.admin.forms import DecisionForm
from app.web.common import actor, flash_error, role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _counts(column, *where) -> dict[str, int]:
    return dict(db.session.execute(select(column, func.count()).where(*where).group_by(column)).tuples().all())


@bp.get("/")
@role_required("admin")
def dashboard():
    """Counts of what needs attention and of the season so far."""
    counts = {
        "hosts": _counts(HostProfile.vetting_status),
        "flags": _counts(Flag.status),
        "bookings": _counts(Booking.status),
        "published_listings": db.session.scalar(select(func.count(Listing.id)).where(Listing.published.is_(True))),
        "seasons": db.session.scalar(select(func.count(Season.id))),
    }
    return render_template("admin/dashboard.html", counts=counts, season=current_season())


def render_queue(status_filter: str, status: int = 200, failed: tuple[int, DecisionForm] | None = None):
    """The vetting queue; each host gets a decision form offering the moves the vetting service allows."""
    query = select(HostProfile, User).join(User, User.id == HostProfile.user_id).order_by(HostProfile.submitted_at)
    if status_filter != "all":
        query = query.where(HostProfile.vetting_status == status_filter)
    rows = db.session.execute(query).tuples().all()
    forms = {}
    for profile, _user in rows:
        form = DecisionForm(formdata=None, prefix=f"host-{profile.user_id}")
        form.decision.choices = [c for c in form.decision.choices
                                 if profile.vetting_status in vetting.DECISIONS[c.value][0]]
        forms[profile.user_id] = form
    if failed:
        forms[failed[0]] = failed[1]
    live = {profile.user_id: len(vetting.live_bookings(profile.user_id)) for profile, _user in rows
            if profile.vetting_status in vetting.DECISIONS["suspend"][0]}
    return render_template("admin/hosts.html", rows=rows, forms=forms, status_filter=status_filter, live=live,
                           statuses=VETTING_STATUSES, counts=_counts(HostProfile.vetting_status)), status


def _status_filter() -> str:
    wanted = request.args.get("status", "pending")
    return wanted if wanted in (*VETTING_STATUSES, "all") else "pending"


@bp.get("/hosts")
@role_required("admin")
def hosts():
    """The vetting queue, filtered by status."""
    return render_queue(_status_filter())


@bp.post("/hosts/<int:user_id>/decision")
@role_required("admin")
def decide(user_id):
    """Approve, reject, suspend or reinstate a host, with a reason."""
    form = DecisionForm(prefix=f"host-{user_id}")
    if not form.validate_on_submit():
        return render_queue(_status_filter(), 422, failed=(user_id, form))
    if form.decision.data == "suspend":
        profile = db.session.get(HostProfile, user_id)
        if profile is not None and profile.vetting_status in vetting.DECISIONS["suspend"][0]:
            impact = vetting.suspension_impact(user_id)
            if form.confirmed.data != "yes" or form.live_seen.data != str(len(impact.bookings)):
                return _confirm_suspension(profile, impact, form)
    try:
        profile = vetting.decide(actor(), user_id, form.decision.data, form.reason.data or "")
    except DomainError as error:
        flash_error(error, form)
        return render_queue(_status_filter(), error.status, failed=(user_id, form))
    flash(_("Beslutet är sparat: %(name)s är nu %(status)s.", name=profile.legal_name,
            status=in_sentence("vetting_status", profile.vetting_status)), "success")
    return redirect(url_for("admin.hosts", status=_status_filter()))


def _confirm_suspension(profile: HostProfile, impact: vetting.SuspensionImpact, form: DecisionForm):
    """The page between the admin's suspend and the suspension: the live bookings that stand, who is told."""
    changed = form.confirmed.data == "yes"  # confirmed, but the live bookings are no longer those shown
    form.confirmed.data, form.live_seen.data = "yes", str(len(impact.bookings))
    return render_template("admin/suspend_confirm.html", profile=profile, impact=impact, form=form,
                           changed=changed, status_filter=_status_filter())


# At the bottom: these modules import `bp` from this one to register their views on it.
from app.web.admin import audit, flags, seasons  # noqa: E402,F401
