"""Issue 10: suspending a host with live contracts warns the admin and tells the coordinators."""
import pyotp
import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Booking, HostProfile, OutboxEmail
from app.services import vetting
from app.services.base import Actor
from tests.helpers import YEAR, csrf_from

REASON = "Upprepade klagomål från gäster."


@pytest.fixture
def live_booking(make_listing, make_user, make_delegation, api_as):
    listing = make_listing(beds=2)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    response = api_as(coordinator).post("/bookings", {
        "delegation_id": delegation.id, "bed_ids": [b.id for b in listing.beds()], "check_in": f"{YEAR}-06-21",
        "check_out": f"{YEAR}-06-23", "accept_contract": True, "payment_method": "invoice"})
    assert response.status_code == 201, response.get_json()
    host = db.session.get(HostProfile, listing.host_id)
    return {"booking_id": response.get_json()["id"], "coordinator": coordinator, "host_id": host.user_id}


def _suspension_mail(coordinator):
    return db.session.scalars(select(OutboxEmail).where(OutboxEmail.to_address == coordinator.email,
                                                        OutboxEmail.subject.contains("avstängd"))).all()


def _admin_signed_in(client, login, make_admin):
    secret = pyotp.random_base32()
    admin = make_admin(totp_secret=secret)
    assert login(admin, otp=pyotp.TOTP(secret).now()).status_code == 302


def test_admin_page_confirms_then_coordinators_are_told(live_booking, client, login, make_admin):
    _admin_signed_in(client, login, make_admin)
    host_id = live_booking["host_id"]
    queue = client.get("/admin/hosts?status=approved")
    html = queue.get_data(as_text=True)
    assert "1 pågående bokning" in html
    first = client.post(f"/admin/hosts/{host_id}/decision?status=approved", data={
        f"host-{host_id}-decision": "suspend", f"host-{host_id}-reason": "Upprepade klagomål från gäster.",
        "csrf_token": csrf_from(queue)})
    # The first POST only shows what the suspension leaves standing; nothing is decided or sent yet.
    assert first.status_code == 200
    page = first.get_data(as_text=True)
    assert "1 pågående bokning står kvar" in page and live_booking["coordinator"].email in page
    assert f"#{live_booking['booking_id']}" in page and 'value="yes"' in page
    db.session.expire_all()
    assert db.session.get(HostProfile, host_id).vetting_status == "approved"
    assert _suspension_mail(live_booking["coordinator"]) == []
    confirmed = client.post(f"/admin/hosts/{host_id}/decision?status=approved", data={
        f"host-{host_id}-decision": "suspend", f"host-{host_id}-reason": "Upprepade klagomål från gäster.",
        f"host-{host_id}-confirmed": "yes", f"host-{host_id}-live_seen": "1", "csrf_token": csrf_from(first)})
    assert confirmed.status_code == 302
    db.session.expire_all()
    assert db.session.get(HostProfile, host_id).vetting_status == "suspended"
    assert db.session.get(Booking, live_booking["booking_id"]).status == "confirmed"
    mails = _suspension_mail(live_booking["coordinator"])
    assert len(mails) == 1 and "gäller oförändrat" in mails[0].body_text
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/"))})
    login(live_booking["coordinator"])
    page = client.get(f"/coordinator/bookings/{live_booking['booking_id']}").get_data(as_text=True)
    assert "Sängplats har stängt av värden." in page


def test_a_confirmation_of_other_live_bookings_shows_the_page_again(live_booking, client, login, make_admin):
    _admin_signed_in(client, login, make_admin)
    host_id = live_booking["host_id"]
    queue = client.get("/admin/hosts?status=approved")
    # Confirmed for no live booking, but one stands now: the admin sees it before anything happens.
    again = client.post(f"/admin/hosts/{host_id}/decision", data={
        f"host-{host_id}-decision": "suspend", f"host-{host_id}-reason": "Klagomål från tre delegationer.",
        f"host-{host_id}-confirmed": "yes", f"host-{host_id}-live_seen": "0", "csrf_token": csrf_from(queue)})
    assert again.status_code == 200 and "har ändrats sedan du öppnade sidan" in again.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(HostProfile, host_id).vetting_status == "approved"


def test_a_host_without_live_bookings_is_confirmed_too(make_host, client, login, make_admin):
    host = make_host()
    _admin_signed_in(client, login, make_admin)
    queue = client.get("/admin/hosts?status=approved")
    first = client.post(f"/admin/hosts/{host.id}/decision", data={
        f"host-{host.id}-decision": "suspend", f"host-{host.id}-reason": REASON, "csrf_token": csrf_from(queue)})
    assert first.status_code == 200 and "inga pågående bokningar" in first.get_data(as_text=True)
    done = client.post(f"/admin/hosts/{host.id}/decision", data={
        f"host-{host.id}-decision": "suspend", f"host-{host.id}-reason": REASON, f"host-{host.id}-confirmed": "yes",
        f"host-{host.id}-live_seen": "0", "csrf_token": csrf_from(first)})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(HostProfile, host.id).vetting_status == "suspended"


def test_api_and_strike_suspensions_tell_the_coordinators(live_booking, api_as, admin_actor, make_admin):
    admin = make_admin()
    response = api_as(admin).post(f"/admin/hosts/{live_booking['host_id']}/decision",
                                  {"decision": "suspend", "reason": "Upprepade klagomål från gäster."})
    assert response.status_code == 200, response.get_json()
    assert len(_suspension_mail(live_booking["coordinator"])) == 1
    assert db.session.get(Booking, live_booking["booking_id"]).status == "confirmed"
    # Reinstated, then suspended by strikes: told again.
    vetting.decide(admin_actor, live_booking["host_id"], "reinstate", "ok")
    from app.services.base import unit_of_work
    from tests.helpers import NOW
    with unit_of_work():
        for _ in range(3):
            vetting.add_strike(Actor.system(), live_booking["host_id"], "test", now=NOW)
    assert db.session.get(HostProfile, live_booking["host_id"]).vetting_status == "suspended"
    assert len(_suspension_mail(live_booking["coordinator"])) == 2
