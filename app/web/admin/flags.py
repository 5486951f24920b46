"""Admin pages for flags: the queue with each host's record, resolving, and raising a flag."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from app.extensions import db
from app.models import Booking, Flag, HostProfile, User
from app.services import flags
from app.services.errors import DomainError
from app.web.admin.forms import AppealDecisionForm, NewFlagForm, ResolveFlagForm
from app.web.admin.routes import bp
from app.web.common import actor, flash_error, role_required

FLAG_STATUSES = ("open", "upheld", "dismissed")


def host_history(host_ids: set[int]) -> dict[int, dict]:
    """Per host: the profile (strikes, status), every flag and every host cancellation."""
    history: dict[int, dict[str, Any]] = {
        host_id: {"user": db.session.get(User, host_id), "profile": db.session.get(HostProfile, host_id),
                  "flags": [], "cancellations": []} for host_id in host_ids}
    for flag in db.session.scalars(select(Flag).where(Flag.host_id.in_(host_ids)).order_by(Flag.created_at)):
        history[flag.host_id]["flags"].append(flag)
    cancelled = select(Booking).where(Booking.host_id.in_(host_ids), Booking.status == "cancelled_by_host")
    for item in db.session.scalars(cancelled.order_by(Booking.cancelled_at)):
        history[item.host_id]["cancellations"].append(item)
    return history


def render_flags(status_filter: str, status: int = 200, failed: tuple[int, ResolveFlagForm] | None = None):
    query = select(Flag).order_by(Flag.created_at.desc(), Flag.id.desc())
    if status_filter != "all":
        query = query.where(Flag.status == status_filter)
    rows = db.session.scalars(query).all()
    forms = {flag.id: ResolveFlagForm(formdata=None, prefix=f"flag-{flag.id}") for flag in rows}
    if failed:
        forms[failed[0]] = failed[1]
    appeals = {flag.id: flags.appeal_of(flag.id) for flag in rows}
    appeal_forms = {flag.id: AppealDecisionForm(formdata=None, prefix=f"appeal-{flag.id}") for flag in rows}
    return render_template("admin/flags.html", flags=rows, forms=forms, status_filter=status_filter,
                           statuses=FLAG_STATUSES, history=host_history({f.host_id for f in rows}),
                           appeals=appeals, appeal_forms=appeal_forms), status


def _status_filter() -> str:
    wanted = request.args.get("status", "open")
    return wanted if wanted in (*FLAG_STATUSES, "all") else "open"


@bp.get("/flags")
@role_required("admin")
def flags_index():
    """The flags queue with each host's history."""
    return render_flags(_status_filter())


@bp.post("/flags/<int:flag_id>/resolve")
@role_required("admin")
def resolve_flag(flag_id):
    """Uphold (a strike) or dismiss a flag, with a note."""
    form = ResolveFlagForm(prefix=f"flag-{flag_id}")
    if not form.validate_on_submit():
        return render_flags(_status_filter(), 422, failed=(flag_id, form))
    try:
        flags.resolve_flag(actor(), flag_id, form.decision.data, form.note.data or "")
    except DomainError as error:
        flash_error(error, form)
        return render_flags(_status_filter(), error.status, failed=(flag_id, form))
    flash(_("Anmälan är fastställd och värden har fått en prickning.") if form.decision.data == "upheld"
          else _("Anmälan är avskriven."), "success")
    return redirect(url_for("admin.flags_index", status=_status_filter()))


def _new_flag_form() -> NewFlagForm:
    form = NewFlagForm(host_id=request.args.get("host_id", type=int))
    hosts = db.session.execute(select(User.id, User.name, User.email).where(User.role == "host")
                               .order_by(User.name)).all()
    form.host_id.choices = [SelectChoice(host_id, f"{name} ({email})") for host_id, name, email in hosts]
    return form


@bp.route("/flags/new", methods=["GET", "POST"])
@role_required("admin")
def flag_new():
    """Raise a flag against a host as an admin."""
    form = _new_flag_form()
    if form.validate_on_submit():
        try:
            flags.create_flag(actor(), host_id=form.host_id.data, category=form.category.data,
                              description=form.description.data, booking_id=form.booking_id.data)
        except DomainError as error:
            flash_error(error, form)
            return render_template("admin/flag_new.html", form=form), error.status
        flash(_("Anmälan är registrerad och ligger i kön."), "success")
        return redirect(url_for("admin.flags_index"))
    status = 422 if request.method == "POST" else 200
    return render_template("admin/flag_new.html", form=form), status


@bp.post("/flags/<int:flag_id>/appeal-decision")
@role_required("admin")
def decide_appeal(flag_id):
    """Decide a host's appeal (an admin other than the one who decided the flag), with the statement of reasons."""
    form = AppealDecisionForm(prefix=f"appeal-{flag_id}")
    if not form.validate_on_submit():
        flash(_("Välj står fast eller upphäv."), "error")
        return redirect(url_for("admin.flags_index", status=_status_filter()))
    try:
        flags.decide_appeal(actor(), flag_id, form.decision.data, form.note.data or "")
    except DomainError as error:
        flash_error(error)
        return render_flags(_status_filter(), error.status)
    flash(_("Överklagandet är prövat och värden har fått beslutet med motiveringen."), "success")
    return redirect(url_for("admin.flags_index", status=_status_filter()))
