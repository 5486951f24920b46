"""Accounts: sign-up, tokens, who am I."""
from flask import request
from flask_babel import gettext as _

from app.api import api
from app.api.common import Body, current_actor, json_body, roles
from app.api.serializers import user_json
from app.extensions import db, limiter
from app.models import HostProfile, User
from app.services import accounts
from app.services.links import external_url

ACCOUNT_LIMIT = "120 per minute"


@api.post("/users")
@limiter.limit(ACCOUNT_LIMIT)
def create_user():
    """Register a host or coordinator."""
    body = Body(json_body())
    email, password = body.str("email", max_length=254), body.str("password", max_length=1000)
    name, role = body.str("name", max_length=120), body.str("role", max_length=20)
    locale = body.str("locale", required=False, max_length=2) or "sv"
    body.done()
    user = accounts.register_user(email, password, name, role, locale=locale, ip=request.remote_addr)
    return user_json(user), 201


@api.post("/tokens")
@limiter.limit(ACCOUNT_LIMIT)
def create_token():
    """Exchange e-mail, password (and an admin's TOTP code) for an API token."""
    body = Body(json_body())
    email, password = body.str("email", max_length=254), body.str("password", max_length=1000)
    otp = body.str("otp", required=False, max_length=10)
    body.done()
    user = accounts.authenticate(email, password, otp=otp, ip=request.remote_addr)
    token = accounts.issue_token(user, ip=request.remote_addr)
    return {"token": token, "user": user_json(user)}, 201


@api.get("/me")
@roles()
def me():
    """Who the token belongs to."""
    actor = current_actor()
    user = db.session.get_one(User, actor.user_id)
    data = user_json(user)
    data["locale"] = user.locale
    data["phone"] = user.phone
    profile = db.session.get(HostProfile, user.id) if user.role == "host" else None
    data["host"] = None if profile is None else {
        "vetting_status": profile.vetting_status, "strikes": profile.strikes,
        "calendar_url": external_url("public.host_calendar", token=profile.calendar_token),
    }
    return data


@api.patch("/me")
@roles("coordinator")
def update_me():
    """Set (or with null or "" clear) the coordinator's phone, shown to the host of a confirmed booking."""
    body = Body(json_body())
    if "phone" not in body.data:
        body.errors["phone"] = [_("Obligatoriskt (null tar bort numret).")]
    phone = body.str("phone", required=False, max_length=100)
    body.done()
    accounts.set_phone(current_actor(), phone)
    return me()
