"""Languages: Swedish by default, English by the user's setting, ?lang= or the browser; a complete catalogue."""
from __future__ import annotations

import re
import subprocess  # nosec B404 - runs the project's own pybabel
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from babel.dates import format_date
from babel.messages.pofile import read_po
from sqlalchemy import select

from app.extensions import db
from app.i18n import STOCKHOLM, parse_kronor
from app.models import OutboxEmail, User
from app.services import accounts
from app.services.base import Actor
from app.services.listings import add_bed, add_room, create_listing
from tests.helpers import NOW, YEAR, csrf_from

ROOT = Path(__file__).resolve().parent.parent
ENGLISH_PO = ROOT / "app" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
HOME_SV = "Bäddar i Visby under Almedalsveckan"
HOME_EN = "Beds in Visby during Almedalen Week"


def html_lang(response) -> str:
    return re.search(r'<html lang="([a-z]+)">', response.get_data(as_text=True)).group(1)


def english(user):
    accounts.set_locale(user.id, "en")
    return user


# ---------------------------------------------------------------------------------------------
# Choosing the language
# ---------------------------------------------------------------------------------------------


def test_pages_are_swedish_by_default(client):
    page = client.get("/")
    assert html_lang(page) == "sv" and HOME_SV in page.get_data(as_text=True)
    assert HOME_EN not in page.get_data(as_text=True)


def test_lang_parameter_switches_and_is_remembered(client):
    page = client.get("/?lang=en")
    assert html_lang(page) == "en" and HOME_EN in page.get_data(as_text=True)
    later = client.get("/listings")  # no parameter: the session remembers the choice
    assert html_lang(later) == "en" and "Published listings" in later.get_data(as_text=True)
    back = client.get("/?lang=sv")
    assert html_lang(back) == "sv" and HOME_SV in back.get_data(as_text=True)
    assert html_lang(client.get("/listings")) == "sv"


def test_unknown_lang_parameter_is_ignored(client):
    assert html_lang(client.get("/?lang=de")) == "sv"


@pytest.mark.parametrize("header, lang", [("en-GB,en;q=0.9", "en"), ("sv-SE,sv;q=0.9,en;q=0.8", "sv"),
                                          ("de-DE,de;q=0.9", "sv"), ("de, en;q=0.5", "en")])
def test_browser_language_decides_for_visitors(client, header, lang):
    page = client.get("/", headers={"Accept-Language": header})
    assert html_lang(page) == lang
    assert (HOME_EN if lang == "en" else HOME_SV) in page.get_data(as_text=True)


def test_the_users_setting_beats_browser_and_parameter(client, login, make_user):
    user = english(make_user("coordinator"))
    login(user)
    page = client.get("/coordinator/", headers={"Accept-Language": "sv-SE,sv"})
    assert html_lang(page) == "en" and "Register your delegation" in page.get_data(as_text=True)
    assert html_lang(client.get("/?lang=sv")) == "en"  # a signed-in user changes the setting instead


def test_signed_in_user_switches_language_with_the_header_form(client, login, make_user):
    user = make_user("host")
    login(user)
    page = client.get("/host/")
    assert html_lang(page) == "sv"
    assert 'action="/account/locale"' in page.get_data(as_text=True)  # the switch in the header
    switched = client.post("/account/locale", data={"locale": "en", "csrf_token": csrf_from(page)},
                           headers={"Referer": "http://localhost/host/"})
    assert switched.status_code == 302 and switched.headers["Location"].endswith("/host/")
    db.session.expire_all()
    assert db.session.get(User, user.id).locale == "en"
    assert html_lang(client.get("/host/")) == "en"


def test_registration_keeps_the_language_chosen_before(client):
    page = client.get("/register?lang=en")
    assert html_lang(page) == "en" and "Create account" in page.get_data(as_text=True)
    client.post("/register", data={"name": "Jane Doe", "email": "jane@example.se", "password": "a-long-passphrase",
                                   "role": "coordinator", "csrf_token": csrf_from(page)})
    user = db.session.scalar(select(User).where(User.email == "jane@example.se"))
    assert user is not None and user.locale == "en"


# ---------------------------------------------------------------------------------------------
# Error messages: the same refusal in either language, with the same code and facts
# ---------------------------------------------------------------------------------------------


def _bed_over_the_cap(make_host, make_season):
    make_season(bookings_open_at=NOW + timedelta(days=30))  # cap 900 kr
    host = make_host()
    actor = Actor(host.id, "host")
    listing = create_listing(actor, title="Rum", description="", address="Strandgatan 1", postal_code="621 56",
                             walking_minutes=5)
    bed = add_bed(actor, add_room(actor, listing.id, "Rum 1").id, "Säng 1", "single")
    return host, listing, bed


def test_price_cap_refusal_in_the_api_is_swedish_by_default_and_english_on_request(api_as, make_host, make_season):
    host, _listing, bed = _bed_over_the_cap(make_host, make_season)
    api = api_as(host)

    swedish = api.put(f"/beds/{bed.id}/prices/{YEAR}", {"price_ore": 95000})
    in_english = api.put(f"/beds/{bed.id}/prices/{YEAR}", {"price_ore": 95000}, headers={"Accept-Language": "en"})

    sv, en = swedish.get_json(), in_english.get_json()
    assert swedish.status_code == in_english.status_code == 422
    assert sv["code"] == en["code"] == "price_above_cap"
    assert sv["max_allowed_ore"] == en["max_allowed_ore"] == 90000
    assert sv["detail"] == ("Säsongens pristak är 900 kr per bädd och natt; det högsta pris du får sätta "
                            "är 900 kr.")
    assert en["detail"] == "The season's cap is SEK 900 per bed-night; the highest price you may set is SEK 900."
    assert sv["title"] == "Begäran avvisades" and en["title"] == "Request refused"


def test_api_follows_the_token_users_setting_unless_the_client_asks(api_as, make_user):
    user = english(make_user("coordinator"))
    api = api_as(user)
    missing = api.get("/delegations/999999")
    assert missing.status_code == 404 and missing.get_json()["detail"] == "No such delegation."
    asked = api.get("/delegations/999999", headers={"Accept-Language": "sv"})
    assert asked.get_json()["detail"] == "Delegationen finns inte."


def test_field_errors_in_the_api_follow_the_language(api_as):
    body = {"email": "not-an-address", "password": "short", "name": "", "role": "host"}
    swedish = api_as().post("/users", body).get_json()
    english_ = api_as().post("/users", body, headers={"Accept-Language": "en"}).get_json()
    assert swedish["code"] == english_["code"] == "invalid"
    assert set(swedish["errors"]) == set(english_["errors"]) == {"email", "password", "name"}
    assert swedish["errors"]["password"] == ["Lösenordet måste ha minst 10 tecken."]
    assert english_["errors"]["password"] == ["Password must be at least 10 characters."]


def test_http_errors_are_translated_too(client, api_as):
    assert "Sidan finns inte" in client.get("/no-such-page").get_data(as_text=True)
    assert "Page not found" in client.get("/no-such-page?lang=en").get_data(as_text=True)
    problem = api_as().get("/no-such-endpoint", headers={"Accept-Language": "en"}).get_json()
    assert problem["code"] == "not_found" and problem["detail"] == "There is nothing at this address."
    assert api_as().get("/no-such-endpoint").get_json()["detail"] == "Det finns inget på den här adressen."


def test_an_english_host_sees_the_refusal_and_the_flash_in_english(client, login, make_host, make_season):
    host, listing, bed = _bed_over_the_cap(make_host, make_season)
    english(host)
    login(host)
    page = client.get(f"/host/listings/{listing.id}")
    assert html_lang(page) == "en" and "SEK 900" in page.get_data(as_text=True)  # the cap, formatted in English

    refused = client.post(f"/host/beds/{bed.id}/price", data={f"bed-{bed.id}-price": "950",
                                                               "csrf_token": csrf_from(page)})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "The season&#39;s cap is SEK 900 per bed-night" in html
    assert "Highest allowed price: SEK 900 per night." in html
    assert "pristak" not in html

    saved = client.post(f"/host/beds/{bed.id}/price", data={f"bed-{bed.id}-price": "850.50",
                                                            "csrf_token": csrf_from(page)}, follow_redirects=True)
    assert "The price for Säng 1 has been saved." in saved.get_data(as_text=True)  # the flash
    assert "SEK 850.50" in saved.get_data(as_text=True)  # typed and shown the English way


def test_amounts_are_read_the_way_each_language_writes_them(app):
    with app.test_request_context("/?lang=sv"):
        assert parse_kronor("1 250,50 kr") == 125050 and parse_kronor("650") == 65000
    with app.test_request_context("/?lang=en"):
        assert parse_kronor("SEK 1,250.50") == 125050 and parse_kronor("1,250") == 125000
    with app.test_request_context("/"):
        for nonsense in ("", "abc", "nan", "inf", "1e999999", "12,345"):
            with pytest.raises(ValueError):
                parse_kronor(nonsense)


# ---------------------------------------------------------------------------------------------
# Money, dates and e-mail in the reader's language
# ---------------------------------------------------------------------------------------------


def test_money_and_dates_on_a_public_page(client, make_season, make_listing):
    listing = make_listing(price_ore=85000, season=make_season(price_cap_ore=90000))
    swedish = client.get(f"/listings/{listing.id}").get_data(as_text=True)
    in_english = client.get(f"/listings/{listing.id}?lang=en").get_data(as_text=True)
    assert "850 kr" in swedish and "SEK 850" in in_english
    vetted = listing.host.host_profile.verified_since.astimezone(STOCKHOLM).date()
    assert f"Granskad sedan: {format_date(vetted, 'medium', locale='sv_SE')}" in swedish  # "27 nov. 2026"
    assert f"Vetted since: {format_date(vetted, 'medium', locale='en_GB')}" in in_english  # "27 Nov 2026"


def test_password_reset_mail_is_in_the_users_language(client, make_user):
    user = english(make_user("host"))
    page = client.get("/password/forgot")
    response = client.post("/password/forgot", data={"email": user.email, "csrf_token": csrf_from(page)})
    assert response.status_code == 302
    mail = db.session.scalar(select(OutboxEmail).where(OutboxEmail.to_address == user.email))
    assert mail.subject == "Reset your Sängplats password"
    assert mail.body_text.startswith(f"Hello {user.name},") and "/password/reset/" in mail.body_text
    assert "lösenord" not in mail.body_text


# ---------------------------------------------------------------------------------------------
# The catalogue: every text in the code is translated
# ---------------------------------------------------------------------------------------------


def _english_catalogue():
    with ENGLISH_PO.open("rb") as handle:
        return read_po(handle, locale="en")


def test_english_catalogue_has_no_untranslated_or_fuzzy_entry():
    catalogue = _english_catalogue()
    entries = [m for m in catalogue if m.id]
    untranslated = [m.id for m in entries
                    if not m.string or (isinstance(m.string, tuple) and not all(m.string))]
    fuzzy = [m.id for m in entries if m.fuzzy]
    assert len(entries) > 900
    assert untranslated == [] and fuzzy == []
    assert not catalogue.fuzzy


def test_english_translations_keep_every_placeholder():
    placeholder = re.compile(r"%\((\w+)\)[sdr]")
    wrong = []
    for message in _english_catalogue():
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(placeholder.findall(" ".join(ids)))
        wrong += [(message.id, s) for s in strings if set(placeholder.findall(s)) != wanted]
    assert wrong == []


def test_every_text_in_the_code_is_in_the_english_catalogue(tmp_path):
    """`make translations-extract` would add nothing: the catalogue covers every msgid of app/ and templates/."""
    pot = tmp_path / "messages.pot"
    subprocess.run(  # nosec B603 - fixed argv
        [str(Path(sys.executable).with_name("pybabel")), "extract", "-F", "babel.cfg", "-k", "_l", "-k",
         "lazy_gettext", "-k", "N_", "-o", str(pot), "."],
        cwd=ROOT, check=True, capture_output=True, timeout=120)
    with pot.open("rb") as handle:
        in_code = {m.id for m in read_po(handle) if m.id}
    translated = {m.id for m in _english_catalogue() if m.id}
    assert sorted(map(str, in_code - translated)) == []
