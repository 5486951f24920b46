"""Host profiles, vetting decisions, flags."""
from typing import Any

from flask import request
from flask_babel import gettext as _
from sqlalchemy import select

from app.api import api
from app.api.common import Body, current_actor, json_body, roles
from app.api.serializers import appeal_json, flag_json, host_flag_json, host_json
from app.extensions import db
from app.models import VETTING_STATUSES, Flag, HostProfile
from app.services import flags, vetting
from app.services.errors import ValidationFailed


@api.put("/host/profile")
@roles("host")
def put_host_profile():
    """Submit vetting details."""
    body = Body(json_body())
    values: dict[str, Any] = {
              "legal_name": body.str("legal_name", max_length=200), "phone": body.str("phone", max_length=40),
              "address": body.str("address", max_length=300), "postal_code": body.str("postal_code", max_length=10),
              "right_to_rent": body.bool("right_to_rent"),
              "organisation_number": body.str("organisation_number", False, max_length=20),
              "vat_number": body.str("vat_number", False, max_length=20),
              "vat_rate_pct": body.int("vat_rate_pct", False)}
    body.done()
    profile = vetting.submit_profile(current_actor(), **values)
    return host_json(profile)


@api.get("/host/profile")
@roles("host")
def get_host_profile():
    """The host's own vetting details."""
    profile = db.session.get(HostProfile, current_actor().user_id)
    if profile is None:
        return {"vetting_status": None}
    return host_json(profile)


@api.get("/admin/hosts")
@roles("admin")
def admin_hosts():
    """The vetting queue (filter by status)."""
    status = request.args.get("status")
    if status is not None and status not in VETTING_STATUSES:
        raise ValidationFailed({"status": [_("Välj en av: %(choices)s.", choices=", ".join(VETTING_STATUSES))]})
    query = select(HostProfile).order_by(HostProfile.submitted_at)
    if status:
        query = query.where(HostProfile.vetting_status == status)
    return {"hosts": [host_json(p) for p in db.session.scalars(query)]}


@api.post("/admin/hosts/<int:user_id>/decision")
@roles("admin")
def admin_host_decision(user_id):
    """Approve, reject, suspend or reinstate a host."""
    if db.session.get(HostProfile, user_id) is None:
        from app.services.errors import NotFound
        raise NotFound(_("Det finns ingen värdprofil med det id:t."))
    body = Body(json_body())
    decision = body.str("decision", max_length=20)
    reason = body.str("reason", required=False, max_length=1000) or ""
    body.done()
    profile = vetting.decide(current_actor(), user_id, decision, reason)
    return {"user_id": profile.user_id, "vetting_status": profile.vetting_status, "strikes": profile.strikes}


@api.post("/flags")
@roles("coordinator", "admin")
def create_flag():
    """Flag a host."""
    body = Body(json_body())
    host_id = body.int("host_id")
    booking_id = body.int("booking_id", required=False)
    category = body.str("category", max_length=40)
    description = body.str("description", max_length=5000)
    body.done()
    flag = flags.create_flag(current_actor(), host_id=host_id, booking_id=booking_id, category=category,
                             description=description)
    return flag_json(flag), 201


@api.get("/admin/flags")
@roles("admin")
def admin_flags():
    """Flags, newest first (filter by status)."""
    status = request.args.get("status")
    if status is not None and status not in ("open", "upheld", "dismissed"):
        raise ValidationFailed({"status": [_("Välj en av: %(choices)s.", choices="open, upheld, dismissed")]})
    query = select(Flag).order_by(Flag.created_at.desc(), Flag.id.desc())
    if status:
        query = query.where(Flag.status == status)
    return {"flags": [flag_json(f) for f in db.session.scalars(query)]}


@api.post("/admin/flags/<int:flag_id>/resolve")
@roles("admin")
def admin_resolve_flag(flag_id):
    """Uphold or dismiss a flag."""
    if db.session.get(Flag, flag_id) is None:
        from app.services.errors import NotFound
        raise NotFound(_("Anmälan finns inte."))
    body = Body(json_body())
    decision = body.str("decision", max_length=20)
    note = body.str("note", required=False, max_length=5000) or ""
    body.done()
    flag = flags.resolve_flag(current_actor(), flag_id, decision, note)
    return flag_json(flag)


@api.get("/host/flags")
@roles("host")
def host_flags():
    """Every flag about the acting host, with its response, decision and statement of reasons."""
    return {"flags": [host_flag_json(flag) for flag in flags.flags_of_host(current_actor())]}


@api.post("/host/flags/<int:flag_id>/response")
@roles("host")
def host_flag_response(flag_id):
    flags.own_flag(current_actor(), flag_id)  # 404 for anyone else, before the body is read
    """Answer a flag within 7 days of it (after: 409 response_closed)."""
    body = Body(json_body())
    text = body.str("text", max_length=5000)
    body.done()
    return host_flag_json(flags.respond(current_actor(), flag_id, text))


@api.post("/host/flags/<int:flag_id>/appeal")
@roles("host")
def host_flag_appeal(flag_id):
    flags.own_flag(current_actor(), flag_id)  # 404 for anyone else, before the body is read
    """Appeal the decision on a flag, once (a second: 409 appeal_exists)."""
    body = Body(json_body())
    text = body.str("text", max_length=5000)
    body.done()
    return appeal_json(flags.appeal(current_actor(), flag_id, text)), 201


@api.post("/admin/flags/<int:flag_id>/appeal-decision")
@roles("admin")
def admin_flag_appeal_decision(flag_id):
    """Decide an appeal (an admin other than the one who decided the flag: else 403 conflict_of_interest)."""
    body = Body(json_body())
    decision = body.str("decision", max_length=20)
    note = body.str("note", max_length=5000)
    body.done()
    item = flags.decide_appeal(current_actor(), flag_id, decision, note)
    return {"flag": flag_json(db.session.get_one(Flag, flag_id)), "appeal": appeal_json(item)}
