"""Pages people could not find or that changed data on GET, and small things people noticed (issue 10)."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pyotp
import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Bed, HostProfile, Payout, User
from app.services import booking as booking_service
from app.services import delegations, invoices, rooming, vetting
from app.services.base import Actor
from tests.helpers import YEAR, csrf_from

AFTER_CHECK_IN = datetime(YEAR, 6, 22, 12, 0, tzinfo=UTC)  # the first night's payout is due


def _invoice_booking(listing, delegation, beds: list[Bed] | None = None):
    return booking_service.create_booking(
        Actor(delegation.coordinator_id, "coordinator"), delegation_id=delegation.id,
        bed_ids=[b.id for b in (beds or listing.beds())], check_in=date(YEAR, 6, 20), check_out=date(YEAR, 6, 21),
        accept_contract=True, payment_method="invoice")


def _host_of(listing):
    return db.session.get(HostProfile, listing.host_id).user


# ---------------------------------------------------------------------------------------------
# Pages nobody could find
# ---------------------------------------------------------------------------------------------


def test_vetting_page_links_the_document_upload(client, login, make_host):
    login(make_host(approved=False))
    assert 'href="/account/vetting-document"' in client.get("/host/profile").get_data(as_text=True)


def test_admin_vetting_queue_links_each_hosts_document(client, admin_login, make_host, app):
    host = make_host(approved=False)
    vetting.attach_document(Actor(host.id, "host"), "lagfart.pdf", b"%PDF-1.4 lagfart\n%%EOF")
    without = make_host(approved=False)
    admin_login()
    html = client.get("/admin/hosts?status=pending").get_data(as_text=True)
    link = f'href="/account/vetting-document/{host.id}"'
    assert link in html and "lagfart.pdf" in html
    assert f'href="/account/vetting-document/{without.id}"' not in html
    assert client.get(f"/account/vetting-document/{host.id}").status_code == 200


def test_sign_in_page_links_forgot_password(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'href="/password/forgot"' in html and "Glömt lösenordet?" in html


@pytest.mark.parametrize("role", ["host", "coordinator", "admin"])
def test_every_signed_in_menu_links_password_and_two_factor(client, login, make_user, make_admin, role):
    if role == "admin":
        secret = pyotp.random_base32()
        user = make_admin(totp_secret=secret)
        login(user, otp=pyotp.TOTP(secret).now())
    else:
        login(make_user(role))
    html = client.get("/listings").get_data(as_text=True)
    menu = html.split('<nav aria-label="Huvudmeny">')[1].split("</nav>")[0]
    assert 'href="/account/password"' in menu and 'href="/account/two-factor"' in menu


def test_signed_out_menu_has_no_account_links(client):
    menu = client.get("/listings").get_data(as_text=True).split('<nav aria-label="Huvudmeny">')[1].split("</nav>")[0]
    assert "/account/password" not in menu


# ---------------------------------------------------------------------------------------------
# A GET never writes
# ---------------------------------------------------------------------------------------------


def _counts():
    db.session.rollback()
    return (db.session.scalar(select(func.count()).select_from(Payout)),
            db.session.scalar(select(func.count()).select_from(AuditEntry)))


def test_payout_pages_do_not_write_on_get(client, login, make_admin, make_listing, make_delegation, monkeypatch):
    listing = make_listing(beds=1)
    booking = _invoice_booking(listing, make_delegation())
    # Invoice money counts toward a payout once it is received (issue 16): the invoice is paid.
    invoices.record_payment(Actor(None, "admin"), booking.invoice_number, booking.total_ore, AFTER_CHECK_IN.date(),
                            now=AFTER_CHECK_IN)
    monkeypatch.setattr("app.services.base.utcnow", lambda: AFTER_CHECK_IN)
    login(_host_of(listing))  # signing in is audited, so count after it
    before = _counts()
    host_page = client.get("/host/payouts")
    assert host_page.status_code == 200 and _counts() == before
    client.post("/logout", data={"csrf_token": csrf_from(host_page)})
    secret = pyotp.random_base32()
    assert login(make_admin(totp_secret=secret), otp=pyotp.TOTP(secret).at(AFTER_CHECK_IN)).status_code == 302
    before = _counts()
    page = client.get("/admin/payments/payouts")
    assert page.status_code == 200 and _counts() == before
    # The ledger is written by the job (flask payments payouts sync / reconcile) or the admin's POST.
    done = client.post("/admin/payments/payouts/sync", data={"csrf_token": csrf_from(page)})
    assert done.status_code == 302
    assert _counts()[0] == before[0] + 1


# ---------------------------------------------------------------------------------------------
# Small things
# ---------------------------------------------------------------------------------------------


def test_admin_dashboard_says_one_host_or_two_hosts(client, admin_login, make_host):
    make_host(approved=False)
    admin_login()
    html = client.get("/admin/").get_data(as_text=True)
    assert "värd väntar på granskning" in html and "värdar väntar" not in html
    make_host(approved=False)
    assert "värdar väntar på granskning" in client.get("/admin/").get_data(as_text=True)


def _rooming_world(make_listing, make_user, make_delegation):
    listing = make_listing(beds=1)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator, members=0)
    booking = _invoice_booking(listing, delegation)
    member = delegations.add_member(Actor(coordinator.id, "coordinator"), delegation.id, "Greta Gäst",
                                    "greta@example.se")
    rooming.assign_rooming(Actor(coordinator.id, "coordinator"), booking.id,
                                   [{"bed_id": listing.beds()[0].id, "member_id": member.id}])
    return coordinator, delegation, booking


def test_rooming_csv_has_swedish_headers_and_english_for_english_users(client, login, api_as, make_listing, make_user,
                                                                        make_delegation):
    coordinator, delegation, booking = _rooming_world(make_listing, make_user, make_delegation)
    login(coordinator)
    lines = client.get(f"/coordinator/delegations/{delegation.id}/rooming.csv").data.decode().lstrip("\ufeff")
    assert lines.splitlines()[0] == "Natt;Boende;Rum;Säng;Gäst;Bokning"
    assert lines.splitlines()[1].split(";")[-1] == str(booking.id)
    api = api_as(coordinator)
    english = api.get(f"/delegations/{delegation.id}/rooming.csv", headers={"Accept-Language": "en"})
    assert english.data.decode().lstrip("\ufeff").splitlines()[0] == "Night;Listing;Room;Bed;Guest;Booking"
    from app.services import accounts
    accounts.set_locale(coordinator.id, "en")
    page = client.get(f"/coordinator/delegations/{delegation.id}/rooming.csv").data.decode().lstrip("\ufeff")
    assert page.splitlines()[0] == "Night;Listing;Room;Bed;Guest;Booking"


def test_contract_pdf_verify_link_is_absolute_and_whole(client, login, make_listing, make_delegation, app):
    listing = make_listing(beds=1)
    delegation = make_delegation()
    booking = _invoice_booking(listing, delegation)
    contract = booking.contract
    login(db.session.get(User, delegation.coordinator_id))
    pdf = client.get(f"/coordinator/contracts/{contract.id}.pdf")
    assert pdf.status_code == 200
    url = f"{app.config['BASE_URL']}/contracts/verify?number={contract.number}&sha256={contract.sha256}"
    assert url.encode() in pdf.data  # a clickable link with the whole checksum
    app.config["BASE_URL"] = "https://sangplats.example"
    again = client.get(f"/coordinator/contracts/{contract.id}.pdf").data
    assert f"https://sangplats.example/contracts/verify?number={contract.number}".encode() in again


def test_listings_cards_show_price_from_and_free_beds(client, make_listing, make_delegation, make_host):
    host = make_host()
    listing = make_listing(host=host, beds=3, price_ore=45000, title="Rum vid hamnen")
    _invoice_booking(listing, make_delegation(), beds=listing.beds()[:1])  # one bed taken for one night
    html = client.get("/listings").get_data(as_text=True)
    card = html.split("Rum vid hamnen")[1].split("</li>")[0]
    assert "från 450 kr" in card.replace("\u00a0", " ") and "per säng och natt" in card
    assert "2 lediga sängar" in card


def test_declined_card_message_says_what_to_do(app):
    from app.services import payments
    assert "faktura" in payments._declined("Your card was declined.")
    assert "faktura" in payments._declined(None)
