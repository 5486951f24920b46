"""Admin pages through real forms with CSRF and TOTP sign-in: vetting, seasons, flags, audit log."""
from datetime import UTC, date, datetime

import pyotp
import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, Flag, HostProfile, Season
from app.services import booking as booking_service
from app.services import cancellations
from app.services import flags as flag_service
from app.services.base import Actor
from app.services.seasons import season_for_year
from tests.helpers import YEAR, csrf_from, season_form


def test_admin_sign_in_needs_the_totp_code(client, login, make_admin):
    secret = pyotp.random_base32()
    admin = make_admin(totp_secret=secret)
    assert login(admin).status_code == 401
    assert client.get("/admin/").status_code == 302


def test_admin_approves_a_host_through_the_queue(client, admin_login, make_host):
    host = make_host(approved=False)
    other = make_host(approved=False)
    admin_login()
    queue = client.get("/admin/hosts")
    html = queue.get_data(as_text=True)
    assert queue.status_code == 200 and f"{host.name} AB" in html and f"{other.name} AB" in html
    response = client.post(f"/admin/hosts/{host.id}/decision?status=pending", data={
        f"host-{host.id}-decision": "approve", f"host-{host.id}-reason": "ID och adress kontrollerade",
        "csrf_token": csrf_from(queue)})
    assert response.status_code == 302
    profile = db.session.get(HostProfile, host.id)
    assert profile.vetting_status == "approved" and profile.verified_since is not None
    assert db.session.get(HostProfile, other.id).vetting_status == "pending"
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "host.approve"))
    assert entry.object_id == str(host.id) and "ID och adress kontrollerade" in entry.after
    pending = client.get("/admin/hosts?status=pending").get_data(as_text=True)
    assert f'id="host-{host.id}"' not in pending and f'id="host-{other.id}"' in pending


def test_a_decision_the_service_refuses_is_shown_not_a_500(client, admin_login, make_host):
    host = make_host(approved=True)
    admin_login()
    page = client.get("/admin/hosts?status=approved")
    response = client.post(f"/admin/hosts/{host.id}/decision", data={
        f"host-{host.id}-decision": "reinstate", f"host-{host.id}-reason": "", "csrf_token": csrf_from(page)})
    assert response.status_code == 409 and "kan inte få beslutet" in response.get_data(as_text=True)
    assert db.session.get(HostProfile, host.id).vetting_status == "approved"


def test_admin_creates_a_season_through_the_form(client, admin_login):
    admin_login()
    page = client.get("/admin/seasons/new")
    assert page.status_code == 200
    response = client.post("/admin/seasons/new", data={**season_form(), "csrf_token": csrf_from(page)})
    assert response.status_code == 302
    season = season_for_year(YEAR + 1)
    assert season.price_cap_ore == 95000 and season.last_night == date(YEAR + 1, 6, 23)
    # 09:00 in Stockholm in February is 08:00 UTC.
    assert season.bookings_open_at == datetime(YEAR + 1, 2, 1, 8, 0, tzinfo=UTC)
    assert season.terms_version and season.terms_text
    listed = client.get("/admin/seasons").get_data(as_text=True)
    assert f"Almedalsveckan {YEAR + 1}" in listed


def test_season_form_shows_service_refusals_next_to_the_fields(client, admin_login):
    admin_login()
    page = client.get("/admin/seasons/new")
    response = client.post("/admin/seasons/new", data={
        **season_form(last_night=f"{YEAR + 1}-06-10", price_cap="0"), "csrf_token": csrf_from(page)})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "samma dag som den första eller senare" in html and "positivt antal öre" in html
    assert db.session.scalar(select(Season.id)) is None


def test_admin_edits_a_season_in_local_time(client, admin_login, make_season):
    make_season()
    admin_login()
    page = client.get(f"/admin/seasons/{YEAR}/edit")
    assert page.status_code == 200 and 'name="year"' not in page.get_data(as_text=True)
    data = {**season_form(name=f"Almedalsveckan {YEAR}", first_night=f"{YEAR}-06-20", last_night=f"{YEAR}-06-26",
                           bookings_open_on=f"{YEAR}-06-01", bookings_open_time="10:30", price_cap="880",
                           free_cancellation_until=f"{YEAR}-04-21", terms_version=f"{YEAR}.1")}
    del data["year"], data["terms_text"]
    response = client.post(f"/admin/seasons/{YEAR}/edit", data={**data, "csrf_token": csrf_from(page)})
    assert response.status_code == 302
    db.session.expire_all()
    season = season_for_year(YEAR)
    assert season.last_night == date(YEAR, 6, 26) and season.price_cap_ore == 88000
    assert season.bookings_open_at == datetime(YEAR, 6, 1, 8, 30, tzinfo=UTC)  # summer time: UTC+2
    assert client.get("/admin/seasons/2031/edit").status_code == 404


def test_admin_resolves_a_flag_with_the_hosts_history(client, admin_login, make_listing, make_delegation):
    listing = make_listing(beds=1)
    delegation = make_delegation()
    coordinator = Actor(delegation.coordinator_id, "coordinator")
    booking = booking_service.create_booking(
        coordinator, delegation_id=delegation.id, bed_ids=[listing.beds()[0].id], check_in=date(YEAR, 6, 20),
        check_out=date(YEAR, 6, 21), accept_contract=True, payment_method="invoice")
    flag = flag_service.create_flag(coordinator, host_id=listing.host_id, category="overcharging",
                                    description="Ville ha 500 kr extra i kontanter.", booking_id=booking.id)
    admin_login()
    queue = client.get("/admin/flags")
    html = queue.get_data(as_text=True)
    assert "Ville ha 500 kr extra i kontanter." in html and "Värdens historik" in html
    response = client.post(f"/admin/flags/{flag.id}/resolve", data={
        f"flag-{flag.id}-decision": "upheld", f"flag-{flag.id}-note": "Bekräftat av två medlemmar.",
        "csrf_token": csrf_from(queue)})
    assert response.status_code == 302
    db.session.expire_all()
    resolved = db.session.get(Flag, flag.id)
    assert resolved.status == "upheld" and resolved.resolution == "Bekräftat av två medlemmar."
    assert db.session.get(HostProfile, listing.host_id).strikes == 1
    again = client.post(f"/admin/flags/{flag.id}/resolve", data={
        f"flag-{flag.id}-decision": "dismissed", "csrf_token": csrf_from(queue)})
    assert again.status_code == 409
    assert db.session.get(HostProfile, listing.host_id).strikes == 1


def test_flag_queue_shows_earlier_flags_and_host_cancellations(client, admin_login, make_listing,
                                                                make_delegation):
    listing = make_listing(beds=1)
    delegation = make_delegation()
    booking = booking_service.create_booking(
        Actor(delegation.coordinator_id, "coordinator"), delegation_id=delegation.id,
        bed_ids=[listing.beds()[0].id], check_in=date(YEAR, 6, 20), check_out=date(YEAR, 6, 21),
        accept_contract=True, payment_method="invoice")
    cancellations.cancel_by_host(Actor(listing.host_id, "host"), booking.id, "Sålde till högstbjudande")
    admin_login()
    html = client.get("/admin/flags").get_data(as_text=True)
    assert "Sålde till högstbjudande" in html and "prickning redan given" in html


def test_admin_raises_a_flag(client, admin_login, make_host):
    host = make_host()
    admin_login()
    page = client.get(f"/admin/flags/new?host_id={host.id}")
    assert page.status_code == 200
    empty = client.post("/admin/flags/new", data={"host_id": str(host.id), "category": "misrepresentation",
                                                  "description": "", "csrf_token": csrf_from(page)})
    assert empty.status_code == 422
    response = client.post("/admin/flags/new", data={
        "host_id": str(host.id), "category": "misrepresentation", "description": "Bilderna är från ett annat hus.",
        "csrf_token": csrf_from(page)})
    assert response.status_code == 302
    flag = db.session.scalar(select(Flag).where(Flag.host_id == host.id))
    assert flag.source == "admin" and flag.status == "open" and flag.category == "misrepresentation"


def test_admin_numbers_too_large_for_the_database_are_refused_not_a_500(client, admin_login, make_host):
    host = make_host()
    admin_login()
    page = client.get("/admin/flags/new")
    flag = client.post("/admin/flags/new", data={"host_id": str(host.id), "category": "other", "description": "x",
                                                 "booking_id": "9" * 20, "csrf_token": csrf_from(page)})
    assert flag.status_code == 422 and "Talet är för stort." in flag.get_data(as_text=True)
    page = client.get("/admin/payments")
    refund = client.post("/admin/payments/refund", data={"booking_id": "9" * 20, "amount_kr": "10",
                                                         "csrf_token": csrf_from(page)}, follow_redirects=True)
    assert refund.status_code == 200 and "Ange bokningsnummer och belopp i kronor." in refund.get_data(as_text=True)


def test_audit_page_lists_entries_newest_first_and_filters(client, admin_login, make_host):
    first = make_host(approved=False)
    second = make_host(approved=True)
    admin_login()
    page = client.get("/admin/audit")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "host.profile_submitted" in html and "host.approve" in html and "auth.otp_ok" in html
    filtered = client.get("/admin/audit?action=host.approve").get_data(as_text=True)
    assert "host.approve" in filtered and "host.profile_submitted" not in filtered
    assert f"#{second.id}" in filtered and f"#{first.id}" not in filtered
    newest = client.get("/admin/audit?action=host.").get_data(as_text=True)
    assert newest.index("host.approve") < newest.index("host.profile_submitted")
    assert client.get("/admin/audit?page=-3&action=%25").status_code == 200


def test_audit_page_paginates(client, admin_login, make_host):
    for _ in range(26):
        make_host(approved=True)  # two entries each: submitted, approved
    admin_login()
    first = client.get("/admin/audit?action=host.").get_data(as_text=True)
    assert "Sida 1 av 2" in first and "page=2" in first
    second = client.get("/admin/audit?action=host.&page=2").get_data(as_text=True)
    assert second.count("<code>host.") == 52 - 50


@pytest.mark.parametrize("path", ["/admin/", "/admin/hosts", "/admin/seasons", "/admin/seasons/new",
                                  "/admin/flags", "/admin/flags/new", "/admin/audit"])
def test_admin_pages_refuse_other_roles_and_anonymous(client, login, make_user, path):
    assert client.get(path).headers["Location"].startswith("/login")
    login(make_user("host"))
    assert client.get(path).status_code == 403


def test_a_host_cannot_post_an_admin_decision(client, login, make_host):
    host = make_host(approved=False)
    login(host)
    token = csrf_from(client.get("/host/"))
    response = client.post(f"/admin/hosts/{host.id}/decision", data={
        f"host-{host.id}-decision": "approve", "csrf_token": token})
    assert response.status_code == 403
    assert db.session.get(HostProfile, host.id).vetting_status == "pending"
