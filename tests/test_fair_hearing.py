"""A fair hearing (issue 17; EU DSA art. 17 and 20): the host sees every flag about them and is told of it, answers
within 7 days, every decision carries a statement of reasons of at least 20 characters, one appeal per decision is
decided by another admin, and overturning restores the host's strike count and status exactly."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Flag, HostProfile, OutboxEmail, User
from app.services import flags, vetting
from app.services.base import Actor
from app.services.errors import DomainError
from tests.helpers import NOW, PASSWORD, csrf_from, signed_in

REASONS = "Styrkt av två gäster; villkorens regel 4; en prickning; överklaga under Anmälningar."


@pytest.fixture
def hearing(make_host, make_user, make_admin, make_season):
    make_season()  # its strike limit is 3
    host = make_host()
    coordinator = make_user("coordinator")
    deciding, other = Actor(make_admin().id, "admin"), Actor(make_admin().id, "admin")

    def flag(description="Ville ha 500 kr extra i kontanter.", now=NOW):
        return flags.create_flag(Actor(coordinator.id, "coordinator"), host_id=host.id, category="overcharging",
                                 description=description, now=now)

    return {"host": host, "host_actor": Actor(host.id, "host"), "deciding": deciding, "other": other, "flag": flag}


def _profile(host_id: int) -> tuple[int, str]:
    db.session.expire_all()
    profile = db.session.get_one(HostProfile, host_id)
    return profile.strikes, profile.vetting_status


def test_the_host_sees_and_is_told_of_every_flag_and_answers_within_7_days(hearing, api_as):
    flag = hearing["flag"]()
    host = db.session.get_one(User, hearing["host"].id)
    told = db.session.scalars(select(OutboxEmail).where(OutboxEmail.to_address == host.email)).all()
    assert any("En anmälan har gjorts mot dig" in mail.subject and "/host/flags" in mail.body_text for mail in told)
    api = api_as(host)
    listed = api.get("/host/flags").get_json()["flags"]
    assert [(f["id"], f["status"], f["response"], f["decision"], f["statement_of_reasons"]) for f in listed] == [
        (flag.id, "open", None, None, None)]
    answered = api.post(f"/host/flags/{flag.id}/response", {"text": "Priset stod i annonsen."})
    assert answered.status_code == 200 and answered.get_json()["response"] == "Priset stod i annonsen."
    # The admin sees the response beside the flag.
    admin = db.session.get_one(User, hearing["deciding"].user_id)
    admin_flags = api_as(admin).get("/admin/flags").get_json()["flags"]
    assert admin_flags[0]["response"] == "Priset stod i annonsen."
    with pytest.raises(DomainError) as closed:
        flags.respond(hearing["host_actor"], flag.id, "För sent.", now=flag.created_at + timedelta(days=7, seconds=1))
    assert (closed.value.code, closed.value.status) == ("response_closed", 409)
    flags.respond(hearing["host_actor"], flag.id, "Sista minuten.", now=flag.created_at + timedelta(days=7))


def test_another_host_cannot_see_or_answer_a_flag(hearing, make_host):
    flag = hearing["flag"]()
    stranger = Actor(make_host().id, "host")
    assert flags.flags_of_host(stranger) == []
    with pytest.raises(DomainError) as hidden:
        flags.respond(stranger, flag.id, "Inte min.")
    assert hidden.value.status == 404


def test_a_decision_needs_a_statement_of_reasons_sent_to_the_host(hearing):
    flag = hearing["flag"]()
    with pytest.raises(DomainError) as short:
        flags.resolve_flag(hearing["deciding"], flag.id, "upheld", "Stämmer.")
    assert "note" in short.value.errors
    flags.resolve_flag(hearing["deciding"], flag.id, "upheld", REASONS)
    host = db.session.get_one(User, hearing["host"].id)
    told = db.session.scalars(select(OutboxEmail).where(OutboxEmail.to_address == host.email)).all()
    assert any(REASONS in mail.body_text and "överklaga" in mail.body_text for mail in told)
    with pytest.raises(DomainError) as suspension:
        vetting.decide(hearing["deciding"], hearing["host"].id, "suspend", "Klagomål.")
    assert "reason" in suspension.value.errors


def test_an_appeal_is_decided_by_another_admin_once(hearing, api_as):
    flag = hearing["flag"]()
    flags.resolve_flag(hearing["deciding"], flag.id, "upheld", REASONS)
    api = api_as(db.session.get_one(User, hearing["host"].id))
    first = api.post(f"/host/flags/{flag.id}/appeal", {"text": "Priset stod i annonsen; se bilden."})
    assert first.status_code == 201
    second = api.post(f"/host/flags/{flag.id}/appeal", {"text": "Igen."})
    assert (second.status_code, second.get_json()["code"]) == (409, "appeal_exists")
    deciding = api_as(db.session.get_one(User, hearing["deciding"].user_id))
    refused = deciding.post(f"/admin/flags/{flag.id}/appeal-decision", {"decision": "overturned", "note": REASONS})
    print("deciding admin:", refused.status_code, refused.get_json())
    assert (refused.status_code, refused.get_json()["code"]) == (403, "conflict_of_interest")
    assert _profile(hearing["host"].id) == (1, "approved")
    other = api_as(db.session.get_one(User, hearing["other"].user_id))
    upheld = other.post(f"/admin/flags/{flag.id}/appeal-decision", {"decision": "upheld", "note": REASONS})
    assert upheld.status_code == 200 and upheld.get_json()["appeal"]["status"] == "upheld"
    again = other.post(f"/admin/flags/{flag.id}/appeal-decision", {"decision": "overturned", "note": REASONS})
    assert (again.status_code, again.get_json()["code"]) == (409, "state_changed")
    assert _profile(hearing["host"].id) == (1, "approved")


def test_overturning_the_strike_that_suspended_restores_count_and_status_exactly(hearing):
    # The season's limit is 3 strikes: two upheld flags, then a third that suspends.
    for i in range(2):
        flags.resolve_flag(hearing["deciding"], hearing["flag"](f"Anmälan {i}").id, "upheld", REASONS)
    assert _profile(hearing["host"].id) == (2, "approved")
    third = hearing["flag"]("Anmälan 3")
    flags.resolve_flag(hearing["deciding"], third.id, "upheld", REASONS)
    assert _profile(hearing["host"].id) == (3, "suspended")
    assert db.session.get_one(Flag, third.id).strike_suspended_from == "approved"
    flags.appeal(hearing["host_actor"], third.id, "Jag var inte där den veckan.")
    with pytest.raises(DomainError) as conflict:
        flags.decide_appeal(hearing["deciding"], third.id, "overturned", REASONS)
    assert conflict.value.code == "conflict_of_interest"
    flags.decide_appeal(hearing["other"], third.id, "overturned", REASONS)
    print("after overturning:", _profile(hearing["host"].id))
    assert _profile(hearing["host"].id) == (2, "approved")
    overturned = db.session.get_one(Flag, third.id)
    assert (overturned.status, overturned.strike_given) == ("dismissed", False)


def test_overturning_a_strike_that_did_not_suspend_leaves_the_suspension(hearing):
    first = hearing["flag"]("Anmälan 1")
    flags.resolve_flag(hearing["deciding"], first.id, "upheld", REASONS)
    for i in range(2):
        flags.resolve_flag(hearing["deciding"], hearing["flag"](f"Anmälan {i + 2}").id, "upheld", REASONS)
    assert _profile(hearing["host"].id) == (3, "suspended")
    flags.appeal(hearing["host_actor"], first.id, "Fel värd.")
    flags.decide_appeal(hearing["other"], first.id, "overturned", REASONS)
    assert _profile(hearing["host"].id) == (2, "suspended")  # the third strike suspended, and it stands


def test_the_host_page_lists_answers_and_appeals(hearing, app):
    flag = hearing["flag"]()
    browser = signed_in(app, db.session.get_one(User, hearing["host"].id))
    page = browser.get("/host/flags")
    assert page.status_code == 200 and "Ville ha 500 kr extra" in page.get_data(as_text=True)
    answered = browser.post(f"/host/flags/{flag.id}/response", data={"csrf_token": csrf_from(page),
                                                                       "text": "Priset stod i annonsen."})
    assert answered.status_code == 302
    flags.resolve_flag(hearing["deciding"], flag.id, "upheld", REASONS)
    page = browser.get("/host/flags")
    assert REASONS in page.get_data(as_text=True)
    appealed = browser.post(f"/host/flags/{flag.id}/appeal", data={"csrf_token": csrf_from(page),
                                                                     "text": "Se annonsen."})
    assert appealed.status_code == 302 and flags.appeal_of(flag.id) is not None


def _admin_browser(app, make_admin):
    """A new admin (with TOTP) signed in through the real form, in a browser of their own."""
    import pyotp
    secret = pyotp.random_base32()
    admin = make_admin(totp_secret=secret)
    browser = app.test_client()
    page = browser.get("/login")
    signed = browser.post("/login", data={"email": admin.email, "password": PASSWORD, "csrf_token": csrf_from(page),
                                          "otp": pyotp.TOTP(secret).now()})
    assert signed.status_code == 302
    return admin, browser


def test_the_admin_page_shows_the_response_and_decides_the_appeal(hearing, app, make_admin):
    deciding_admin, deciding = _admin_browser(app, make_admin)
    _other_admin, other = _admin_browser(app, make_admin)
    flag = hearing["flag"]()
    flags.respond(hearing["host_actor"], flag.id, "Priset stod i annonsen.")
    flags.resolve_flag(Actor(deciding_admin.id, "admin"), flag.id, "upheld", REASONS)
    flags.appeal(hearing["host_actor"], flag.id, "Se annonsen, priset stod där.")
    page = deciding.get("/admin/flags?status=upheld")
    text = page.get_data(as_text=True)
    assert "Priset stod i annonsen." in text and "Se annonsen, priset stod där." in text
    assert "Pröva överklagandet" not in text  # the deciding admin gets no form
    refused = deciding.post(f"/admin/flags/{flag.id}/appeal-decision?status=upheld", data={
        "csrf_token": csrf_from(page), f"appeal-{flag.id}-decision": "overturned", f"appeal-{flag.id}-note": REASONS})
    assert refused.status_code == 403
    page = other.get("/admin/flags?status=upheld")
    assert "Pröva överklagandet" in page.get_data(as_text=True)
    done = other.post(f"/admin/flags/{flag.id}/appeal-decision?status=upheld", data={
        "csrf_token": csrf_from(page), f"appeal-{flag.id}-decision": "overturned", f"appeal-{flag.id}-note": REASONS})
    assert done.status_code == 302
    assert _profile(hearing["host"].id) == (0, "approved")

