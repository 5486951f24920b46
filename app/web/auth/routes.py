"""Session sign-in, sign-out and sign-up."""
from datetime import UTC, datetime

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from app.extensions import limiter
from app.services import accounts
from app.services.errors import DomainError
from app.web.auth.forms import LoginForm, RegisterForm
from app.web.common import flash_error, local_path

bp = Blueprint("auth", __name__)
ACCOUNT_LIMIT = "120 per minute"


def _home_for(user) -> str:
    return url_for({"host": "host.dashboard", "coordinator": "coordinator.dashboard",
                    "admin": "admin.dashboard"}[user.role])


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(ACCOUNT_LIMIT, methods=["POST"])
def login():
    """Sign in with e-mail and password (and a TOTP code for admins)."""
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(form.email.data, form.password.data, otp=form.otp.data or None,
                                         ip=request.remote_addr)
        except DomainError as error:
            if error.code == "two_factor_enrolment_required":
                session.clear()
                session["enrol_uid"], session["enrol_at"] = error.user_id, datetime.now(UTC).timestamp()
                return redirect(url_for("account.two_factor"))
            flash_error(error)
            status = error.status if error.status in (401, 403, 429) else 422
        else:
            session.clear()  # a new session at sign-in (no fixation)
            login_user(user)
            return redirect(local_path(request.args.get("next", "")) or _home_for(user))
    elif request.method == "POST":
        status = 422
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout():
    """Sign out: the session ends on the server too."""
    accounts.end_all_sessions(current_user.id, ip=request.remote_addr)
    logout_user()
    session.clear()
    flash(_("Du är utloggad."), "info")
    return redirect(url_for("public.home"))


@bp.get("/logout")
def logout_page():
    """Ask to confirm sign-out (a GET must not change state)."""
    return render_template("auth/logout.html")


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(ACCOUNT_LIMIT, methods=["POST"])
def register():
    """Create a host or coordinator account."""
    form = RegisterForm(role=request.args.get("role", "coordinator"))
    status = 200
    if form.validate_on_submit():
        try:
            user = accounts.register_user(form.email.data, form.password.data, form.name.data, form.role.data,
                                          locale=session.get("lang", "sv"), ip=request.remote_addr)
        except DomainError as error:
            flash_error(error, form)
            status = error.status
        else:
            session.clear()
            login_user(user)
            flash(_("Välkommen till Sängplats!"), "success")
            return redirect(_home_for(user))
    elif request.method == "POST":
        status = 422
    return render_template("auth/register.html", form=form), status
