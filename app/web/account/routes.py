"""Account pages: password change and reset, two-factor enrolment, vetting document, language."""
import io
from datetime import UTC, datetime

import segno
from flask import Blueprint, flash, redirect, render_template, request, send_file, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user

from app.extensions import db, limiter
from app.models import User
from app.services import accounts, vetting
from app.services.errors import DomainError
from app.services.links import external_url
from app.web.account.forms import (
    ChangePasswordForm,
    DocumentForm,
    EnrolTotpForm,
    ForgotPasswordForm,
    LocaleForm,
    ResetPasswordForm,
)
from app.web.common import actor, flash_error, role_required

bp = Blueprint("account", __name__)
ENROL_WINDOW_SECONDS = 600
ACCOUNT_LIMIT = "120 per minute"


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change the password; every other session and API token stops working."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            user = accounts.change_password(current_user.id, form.current_password.data, form.password.data,
                                            ip=request.remote_addr)
        except DomainError as error:
            flash_error(error, form)
            return render_template("account/password.html", form=form), error.status
        login_user(user)  # this session continues under the new session version
        flash(_("Lösenordet är bytt. Andra inloggningar och API-nycklar är avslutade."), "success")
        return redirect(url_for("account.change_password"))
    return render_template("account/password.html", form=form), 422 if form.errors else 200


def _enrolling_user():
    """The admin whose password was just checked, or the signed-in user enrolling voluntarily."""
    if current_user.is_authenticated:
        return current_user
    uid, started = session.get("enrol_uid"), session.get("enrol_at", 0)
    if uid and datetime.now(UTC).timestamp() - started < ENROL_WINDOW_SECONDS:
        return db.session.get(User, uid)
    return None


@bp.route("/account/two-factor", methods=["GET", "POST"])
def two_factor():
    """Enrol an authenticator app (TOTP) and receive recovery codes."""
    user = _enrolling_user()
    if user is None:
        return redirect(url_for("auth.login"))
    secret = session.setdefault("enrol_secret", accounts.new_totp_secret())
    form = EnrolTotpForm()
    if form.validate_on_submit():
        try:
            codes = accounts.enrol_totp(user.id, secret, form.code.data, ip=request.remote_addr)
        except DomainError as error:
            flash_error(error, form)
        else:
            for key in ("enrol_secret", "enrol_uid", "enrol_at"):
                session.pop(key, None)
            login_user(db.session.get(User, user.id))
            return render_template("account/recovery_codes.html", codes=codes)
    qr = segno.make(accounts.provisioning_uri(user, secret), error="m").svg_data_uri(scale=5)
    return render_template("account/two_factor.html", form=form, secret=secret, qr=qr,
                           enrolled=bool(user.totp_secret)), 422 if form.errors else 200


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(ACCOUNT_LIMIT, methods=["POST"])
def forgot_password():
    """Ask for a reset link by e-mail (same answer whether or not the account exists)."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        accounts.request_password_reset(
            form.email.data, ip=request.remote_addr,
            reset_url=lambda token: external_url("account.reset_password", token=token))
        flash(_("Om adressen har ett konto har vi skickat en länk. Den gäller i en timme."), "info")
        return redirect(url_for("auth.login"))
    return render_template("account/forgot.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limiter.limit(ACCOUNT_LIMIT, methods=["POST"])
def reset_password(token):
    """Set a new password from an e-mailed link (single use, one hour)."""
    if accounts.user_for_reset_token(token) is None:
        return render_template("errors/error.html", status=400,
                               message=_("Länken är ogiltig, för gammal eller redan använd. Be om en ny.")), 400
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.reset_password(token, form.password.data, ip=request.remote_addr)
        except DomainError as error:
            flash_error(error, form)
        else:
            flash(_("Lösenordet är bytt. Logga in med det nya."), "success")
            return redirect(url_for("auth.login"))
    return render_template("account/reset.html", form=form), 422 if form.errors else 200


@bp.route("/account/vetting-document", methods=["GET", "POST"])
@role_required("host")
def vetting_document():
    """Upload the document that proves the right to let the property."""
    form = DocumentForm()
    if form.validate_on_submit():
        upload = form.document.data
        try:
            vetting.attach_document(actor(), upload.filename, upload.read())
        except DomainError as error:
            flash_error(error, form)
            return render_template("account/document.html", form=form), error.status
        flash(_("Dokumentet är uppladdat och visas bara för dig och Sängplats granskare."), "success")
        return redirect(url_for("account.vetting_document"))
    from app.models import HostProfile
    profile = db.session.get(HostProfile, current_user.id)
    return render_template("account/document.html", form=form, profile=profile), 422 if form.errors else 200


@bp.get("/account/vetting-document/<int:host_id>")
@role_required("host", "admin")
def download_document(host_id):
    """Serve a vetting document to its host and to admins only."""
    document = vetting.document_for(actor(), host_id)
    return send_file(io.BytesIO(document.data), mimetype=document.content_type, as_attachment=True,
                     download_name=document.filename, etag=document.sha256)


@bp.post("/account/locale")
@login_required
def set_locale():
    """Choose Swedish or English."""
    form = LocaleForm()
    if form.validate_on_submit():
        accounts.set_locale(current_user.id, form.locale.data)
    return redirect(request.referrer if (request.referrer or "").startswith(request.host_url) else "/")
