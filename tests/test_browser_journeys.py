"""The three roles' main journeys in real Chromium, by typing and clicking on the real forms.

Each step saves a screenshot to test-artifacts/journeys/<journey>/<nn>-<step>.png and asserts what a
person would see there; the database is read afterwards to check that the page told the truth.
Runs on SQLite only (the app's rules are tested on both databases elsewhere).
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import BedNight, Booking, Flag, HostProfile, Listing, User
from app.services import vetting
from app.services.base import Actor
from tests.browser import (
    FIRST_NIGHT,
    PASSWORD,
    Screenshots,
    World,
    bookable_world,
    chromium,
    fresh,
    live_app,
    main_text,
    make_admin,
    make_coordinator,
    make_season,
    new_tab,
    sign_in,
    totp_now,
)
from tests.helpers import YEAR


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def live(tmp_path):
    with live_app(tmp_path / "live") as served:
        yield served


def flash(page) -> str:
    return page.inner_text(".flashes")


def test_host_registers_is_vetted_lists_prices_and_publishes(browser, live):
    admin = make_admin()
    season = make_season(admin)
    tab = new_tab(browser, live.base_url)
    page, shot = tab.page, Screenshots(tab.page, "host")

    page.goto("/")
    page.get_by_role("banner").get_by_role("link", name="Skapa konto").click()
    page.get_by_label("Namn").fill("Karin Lindqvist")
    page.get_by_label("E-post").fill("karin@example.se")
    page.get_by_label("Lösenord (minst 10 tecken)").fill(PASSWORD)
    page.get_by_label("Värd på Gotland").check()
    shot("register")
    page.locator("main form").get_by_role("button", name="Skapa konto").click()
    page.wait_for_url("**/host/")
    assert "Välkommen till Sängplats!" in flash(page)
    assert "Hej Karin Lindqvist" in main_text(page)
    assert page.locator(".stat .badge").first.inner_text() == "Inga uppgifter inskickade"
    shot("dashboard-new-host")

    page.get_by_role("link", name="Skicka in dina uppgifter för granskning").click()
    page.get_by_label("Juridiskt namn").fill("Karin Lindqvist")
    page.get_by_label("Telefon").fill("+46 70 123 45 67")
    page.get_by_label("Gatuadress på Gotland").fill("Strandgatan 14")
    page.get_by_label("Postnummer").fill("621 56")
    page.get_by_label("Jag intygar att jag har rätt att hyra ut bostaden").check()
    shot("vetting-form")
    page.get_by_role("button", name="Skicka för granskning").click()
    page.wait_for_url("**/host/")
    assert "Dina uppgifter är skickade och granskas av Sängplats" in flash(page)
    assert "Väntar på granskning" in main_text(page)
    shot("vetting-pending")

    host = db.session.scalar(select(User).where(User.email == "karin@example.se"))
    # The admin approves (the admin journey does it through the admin pages).
    vetting.decide(Actor(admin.id, "admin"), host.id, "approve", "Uppgifterna stämmer.")
    page.reload()
    assert page.locator(".stat .badge").first.inner_text() == "Godkänd"
    shot("approved")

    page.locator("main").get_by_role("link", name="Nytt boende").click()
    page.get_by_label("Rubrik").fill("Rum med havsutsikt vid Strandgatan")
    page.get_by_label("Beskrivning").fill("Två sängar, fem minuter från Almedalen.")
    page.get_by_label("Gatuadress").fill("Strandgatan 14")
    page.get_by_label("Postnummer").fill("621 56")
    page.get_by_label("Promenad till Almedalen (minuter)").fill("5")
    shot("new-listing")
    page.get_by_role("button", name="Skapa utkast").click()
    assert "Boendet är skapat som utkast" in flash(page)
    assert page.get_by_role("heading", level=1).inner_text().startswith("Rum med havsutsikt vid Strandgatan")
    assert "Utkast" in page.get_by_role("heading", level=1).inner_text()

    page.get_by_label("Rummets namn").fill("Sovrum 1")
    page.get_by_role("button", name="Lägg till rum").click()
    assert "Rummet är tillagt." in flash(page)
    assert page.get_by_role("heading", name="Sovrum 1", level=3).is_visible()
    for label in ("Säng vid fönstret", "Säng vid dörren"):
        page.get_by_text("Lägg till en bädd i Sovrum 1").click()
        page.get_by_label("Bäddens namn").fill(label)
        page.get_by_label("Typ av bädd").select_option(label="Enkelsäng")
        page.get_by_role("button", name="Lägg till bädd").click()
        assert "Bädden är tillagd. Sätt ett pris på den." in flash(page)
    beds = page.locator("#rooms tbody tr")
    assert beds.count() == 2 and beds.first.get_by_text("Inget pris").is_visible()
    shot("room-and-beds")

    first_bed = beds.filter(has_text="Säng vid fönstret")
    first_bed.get_by_label("Pris per natt (kr, slutpris)").fill("1200")
    first_bed.get_by_role("button", name="Spara pris").click()
    refused = page.locator("#rooms tbody tr").filter(has_text="Säng vid fönstret")
    assert "Högsta tillåtna pris: 900 kr per natt." in refused.inner_text().replace("\u00a0", " ")
    shot("price-over-the-cap-refused")
    for name in ("Säng vid fönstret", "Säng vid dörren"):
        row = page.locator("#rooms tbody tr").filter(has_text=name)
        row.get_by_label("Pris per natt (kr, slutpris)").fill("650")
        row.get_by_role("button", name="Spara pris").click()
        assert f"Priset för {name} är sparat." in flash(page)
    for row_text in page.locator("#rooms tbody tr").all_inner_texts():
        assert "650 kr" in row_text.replace("\u00a0", " ")
    shot("prices-set")

    publish = page.locator("#publish")
    assert publish.get_by_role("region", name=re.compile("Standardvillkor")).is_visible()
    publish.get_by_role("button", name="Publicera boendet").click()
    assert season.terms_version in page.locator("#publish .error").inner_text()  # not published unaccepted
    assert "Utkast" in page.get_by_role("heading", level=1).inner_text()
    publish.get_by_label("Jag godkänner standardvillkoren").check()
    shot("publish-terms")
    publish.get_by_role("button", name="Publicera boendet").click()
    assert "Boendet är publicerat. Ditt anbud gäller nu enligt villkoren." in flash(page)
    assert "Publicerad" in page.get_by_role("heading", level=1).inner_text()
    shot("published")

    page.get_by_role("link", name="Visa publik sida").click()
    page.wait_for_url(re.compile(r"/listings/\d+$"))
    public = main_text(page).replace("\u00a0", " ")
    assert "Rum med havsutsikt vid Strandgatan" in public and "Värd: Karin Lindqvist" in public
    assert public.count("650 kr") == 2 and "Säng vid fönstret" in public
    shot("public-listing-page")

    fresh()
    listing = db.session.scalar(select(Listing).where(Listing.host_id == host.id))
    assert listing.published and listing.accepted_terms_version == season.terms_version
    assert len(listing.beds()) == 2
    assert not tab.csp_errors(), tab.errors
    tab.close()


def test_admin_signs_in_with_totp_approves_a_host_and_resolves_a_flag(browser, live):
    world: World = bookable_world()
    tab = new_tab(browser, live.base_url)
    page, shot = tab.page, Screenshots(tab.page, "admin")

    page.goto("/login")
    page.get_by_label("E-post").fill(world.admin.email)
    page.get_by_label("Lösenord").fill(PASSWORD)
    page.get_by_label("Engångskod (admin)").fill(totp_now())
    shot("sign-in-with-code")
    page.locator("main form").get_by_role("button", name="Logga in").click()
    page.wait_for_url("**/admin/")
    assert page.get_by_role("link", name="Administration").is_visible()
    shot("dashboard")

    page.get_by_role("navigation", name="Adminmeny").get_by_role("link", name="Granskning").click()
    card = page.locator("article.card").filter(has_text="Pettersson Uthyrning AB")
    assert card.get_by_text("Väntar på granskning").is_visible()
    assert "olof@example.se" in card.inner_text()
    card.get_by_label("Beslut").select_option(label="Godkänn")
    card.get_by_label("Motivering").fill("Äganderätten kontrollerad i fastighetsregistret.")
    shot("vetting-queue")
    card.get_by_role("button", name="Spara beslut").click()
    assert "Beslutet är sparat: Pettersson Uthyrning AB är nu godkänd." in flash(page)
    assert page.locator("article.card").filter(has_text="Pettersson Uthyrning AB").count() == 0  # left the queue
    assert "Inga värdar med den statusen." in main_text(page)
    shot("host-approved")

    page.get_by_role("navigation", name="Adminmeny").get_by_role("link", name="Anmälningar").click()
    card = page.locator(f"#flag-{world.flag.id}")
    assert "Värden bad om extra betalning vid ankomsten." in card.inner_text()
    assert card.get_by_text("Öppen").is_visible()
    card.get_by_label("Fastställ (ger en prickning)").check()
    card.get_by_label("Anteckning").fill("Bekräftat av två gäster.")
    shot("flag-open")
    card.get_by_role("button", name="Avgör anmälan").click()
    assert "Anmälan är fastställd och värden har fått en prickning." in flash(page)
    assert "Inga anmälningar med den statusen." in main_text(page)
    page.get_by_role("navigation", name="Filtrera på status").get_by_role("link", name="Fastställda").click()
    resolved = page.locator(f"#flag-{world.flag.id}")
    assert resolved.get_by_text("Fastställd", exact=True).is_visible()
    assert "Bekräftat av två gäster." in resolved.inner_text()
    shot("flag-upheld")

    fresh()
    assert db.session.get(HostProfile, world.pending_host.id).vetting_status == "approved"
    assert db.session.get(Flag, world.flag.id).status == "upheld"
    assert db.session.get(HostProfile, world.host.id).strikes == 1
    assert not tab.csp_errors(), tab.errors
    tab.close()


def test_coordinator_books_by_invoice_gets_the_contract_and_rooms_the_delegation(browser, live):
    world = bookable_world()
    coordinator = make_coordinator()
    tab = new_tab(browser, live.base_url)
    page, shot = tab.page, Screenshots(tab.page, "coordinator")

    sign_in(page, coordinator.email)
    page.wait_for_url("**/coordinator/")
    assert "Hej Sara Samordnare" in main_text(page)
    shot("dashboard")

    page.get_by_role("link", name="Registrera er delegation").click()
    page.get_by_label("Organisationens namn").fill("Föreningen Framtid")
    page.get_by_label("Organisationsnummer").fill("802000-1239")
    shot("new-delegation")
    page.get_by_role("button", name="Registrera").click()
    assert "Delegationen är skapad. Lägg till medlemmarna." in flash(page)
    page.get_by_label("Namn").fill("Maja Medlem")
    page.get_by_label("E-post").fill("maja@example.se")
    page.get_by_role("button", name="Lägg till").click()
    assert "Maja Medlem är tillagd." in flash(page)
    assert page.get_by_role("cell", name="maja@example.se").is_visible()
    shot("member-added")

    page.get_by_role("navigation", name="Samordnarens meny").get_by_role("link", name="Sök bäddar").click()
    page.get_by_label("Incheckning").fill(FIRST_NIGHT.isoformat())
    page.get_by_label("Utcheckning").fill(f"{YEAR}-06-22")
    page.get_by_label("Antal bäddar").fill("2")
    page.get_by_role("button", name="Sök", exact=True).click()
    results = page.locator("section.results")
    assert results.get_by_role("heading", level=2).inner_text() == "1 boende med plats"
    result = results.locator("form.result").filter(has_text="Rum vid Strandgatan")
    assert "2 bäddar, de billigaste: 2 600 kr" in result.inner_text().replace("\u00a0", " ")
    shot("search-results")

    result.get_by_role("button", name="Granska avtalet").click()
    page.wait_for_url("**/coordinator/review?*")
    contract = page.locator("article.contract-preview")
    assert "Karin Lindqvist" in contract.inner_text()
    assert "2 600 kr" in contract.locator("tfoot").inner_text().replace("\u00a0", " ")
    assert page.get_by_label("Faktura").is_checked()
    page.get_by_label("Jag accepterar det bindande avtalet").check()
    shot("contract-review")
    page.get_by_role("button", name="Boka bindande").click()
    page.wait_for_url(re.compile(r"/coordinator/bookings/\d+$"))
    message = flash(page)
    number = re.search(fr"Avtal (SP-{YEAR}-\d+) är bindande", message)
    assert number, message
    assert "Bekräftad" in page.get_by_role("heading", level=1).inner_text()
    assert number.group(1) in main_text(page)
    shot("booked-by-invoice")

    pdf_link = page.get_by_role("link", name="Ladda ner avtalet (PDF)")
    response = page.request.get(pdf_link.get_attribute("href"))
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.body().startswith(b"%PDF")

    page.get_by_role("link", name="Rumsfördelning").click()
    selects = page.locator("main select")
    assert selects.count() == 2
    selects.first.select_option(label="Maja Medlem")
    shot("rooming-list")
    page.get_by_role("button", name="Spara").click()
    assert "Rumsfördelningen är sparad." in flash(page)
    assert page.locator("main select").first.locator("option:checked").inner_text() == "Maja Medlem"

    page.get_by_role("link", name="Blocköversikt").click()
    grid = page.locator("table.block-grid")
    assert grid.locator("td.slot-taken").all_inner_texts() == ["Maja Medlem", "Maja Medlem"]
    assert grid.locator("td.slot-empty").count() == 2
    assert "2 bokade bädd-nätter saknar en person." in main_text(page)
    shot("block-view")

    fresh()
    booking = db.session.scalar(select(Booking).where(Booking.coordinator_id == coordinator.id))
    assert booking.status == "confirmed" and booking.payment_method == "invoice"
    assert booking.listing_id == world.listing.id
    assert booking.contract.number == number.group(1)
    members = db.session.scalars(select(BedNight.member_id).where(BedNight.booking_id == booking.id)).all()
    assert sorted(m is not None for m in members) == [False, False, True, True]
    assert not tab.csp_errors(), tab.errors
    tab.close()

