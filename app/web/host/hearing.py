"""Host pages for a fair hearing (issue 17): every flag about the host, their answer within 7 days, one appeal per
decision."""
from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from app.models import utcnow
from app.services import flags
from app.services.errors import DomainError
from app.web.common import actor, flash_error, role_required
from app.web.host.routes import bp


class ResponseForm(FlaskForm):
    text = TextAreaField(_l("Ditt svar"), validators=[DataRequired(), Length(max=5000)])


class AppealForm(FlaskForm):
    text = TextAreaField(_l("Varför beslutet är fel"), validators=[DataRequired(), Length(max=5000)])


def _page(status: int = 200, **forms):
    items = flags.flags_of_host(actor())
    appeals = {flag.id: flags.appeal_of(flag.id) for flag in items}
    closes = {flag.id: flags.response_closes_at(flag) for flag in items}
    return render_template("host/flags.html", flags=items, appeals=appeals, closes=closes, now=utcnow(),
                           response_form=forms.get("response_form") or ResponseForm(formdata=None),
                           appeal_form=forms.get("appeal_form") or AppealForm(formdata=None)), status


@bp.get("/flags")
@role_required("host")
def flags_page():
    """Every flag about the host: what was reported, the answer, the decision and its reasons, the appeal."""
    return _page()


@bp.post("/flags/<int:flag_id>/response")
@role_required("host")
def flag_response(flag_id):
    flags.own_flag(actor(), flag_id)
    form = ResponseForm()
    if not form.validate_on_submit():
        return _page(422, response_form=form)
    try:
        flags.respond(actor(), flag_id, form.text.data or "")
    except DomainError as error:
        flash_error(error, form)
        return _page(error.status, response_form=form)
    flash(_("Ditt svar är sparat; administratörerna läser det innan de prövar anmälan."), "success")
    return redirect(url_for("host.flags_page"))


@bp.post("/flags/<int:flag_id>/appeal")
@role_required("host")
def flag_appeal(flag_id):
    flags.own_flag(actor(), flag_id)
    form = AppealForm()
    if not form.validate_on_submit():
        return _page(422, appeal_form=form)
    try:
        flags.appeal(actor(), flag_id, form.text.data or "")
    except DomainError as error:
        flash_error(error, form)
        return _page(error.status, appeal_form=form)
    flash(_("Överklagandet är inskickat; en annan administratör än den som beslutade prövar det."), "success")
    return redirect(url_for("host.flags_page"))
