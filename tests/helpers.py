"""Plain helpers shared by the tests: constants, CSRF and sign-in, the API booking call, calendar parsing.

Fixtures live in conftest.py (pytest finds them without imports); test modules import plain functions and
constants from here, never from conftest or from another test module, so each module is loaded once, under
one name (`tests.helpers`, `tests.live_server`, `tests.pause`, `tests.stripe_fixtures`, `tests.browser`).
"""
from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit

from icalendar import Calendar
from stdnum import luhn

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery"
NOW = datetime.now(UTC)
# The test season is next year's Almedalsveckan (20-25 June), built from today, so that its opening,
# free-cancellation date (21 April) and first night all lie ahead whatever today is: the suite never
# rots with the calendar. Dates the tests need after today are passed to the services as `now=`.
YEAR = NOW.year + 1
FIRST_NIGHT = date(YEAR, 6, 20)
LAST_NIGHT = date(YEAR, 6, 25)
RACE_STRIKE_LIMIT = 3  # the race tests' season (race_world)
ROUNDS = 10  # race rounds, each with its racers released together by a barrier
# The coordinator pages' default stay (nights 20 and 21 June).
CHECK_IN, CHECK_OUT = date(YEAR, 6, 20), date(YEAR, 6, 22)


def stale_catalogues(translations: Path) -> list[str]:
    """Each catalogue whose compiled .mo is missing or older than its .po, as a sentence."""
    problems = []
    for po in sorted(translations.glob("*/LC_MESSAGES/messages.po")):
        mo = po.with_suffix(".mo")
        if not mo.exists():
            problems.append(f"{mo.relative_to(ROOT) if mo.is_relative_to(ROOT) else mo} is missing")
        elif mo.stat().st_mtime < po.stat().st_mtime:
            problems.append(f"{mo.relative_to(ROOT) if mo.is_relative_to(ROOT) else mo} is older than its .po")
    return problems


def valid_organisation_number(n: int) -> str:
    """The n-th valid Swedish organisation number (Luhn check digit, third digit 2) for tests: each
    delegation a number of its own, since the hoarding limits count all delegations of one number together."""
    base = f"{802000000 + n:09d}"
    return f"{base[:6]}-{base[6:]}{luhn.calc_check_digit(base)}"


def csrf_from(response) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', response.get_data(as_text=True))
    assert match, "no CSRF token on the page"
    return match.group(1)


def signed_in(app, user):
    """A fresh browser (test client) signed in through the real login form."""
    browser = app.test_client()
    page = browser.get("/login")
    response = browser.post("/login", data={"email": user.email, "password": PASSWORD,
                                            "csrf_token": csrf_from(page)})
    assert response.status_code == 302, response.get_data(as_text=True)
    return browser


def review_data(delegation, bed_ids, check_in=CHECK_IN, check_out=CHECK_OUT, **extra):
    """The coordinator's review form for a stay, as posted."""
    data = {"check_in": check_in.isoformat(), "check_out": check_out.isoformat(), "bed_ids": bed_ids,
            "delegation_id": delegation.id, "payment_method": "invoice", "accept_contract": "y"}
    data.update(extra)
    return data


def review_url(bed_ids, check_in=CHECK_IN, check_out=CHECK_OUT):
    query = "&".join(f"bed_ids={b}" for b in bed_ids)
    return f"/coordinator/review?check_in={check_in.isoformat()}&check_out={check_out.isoformat()}&{query}"


def api_book(api, delegation_id, bed_ids, check_in=f"{YEAR}-06-21", check_out=f"{YEAR}-06-23", method="invoice",
             **extra):
    """POST /bookings through the API door (the tests of that door; others book with `make_booking`)."""
    body = {"delegation_id": delegation_id, "bed_ids": bed_ids, "check_in": check_in, "check_out": check_out,
            "accept_contract": True, "payment_method": method, **extra}
    return api.post("/bookings", body, headers=extra.pop("headers", None))


def season_form(**overrides):
    """The admin's new-season form for next year's season, as posted."""
    data = {"year": f"{YEAR + 1}", "name": f"Almedalsveckan {YEAR + 1}", "first_night": f"{YEAR + 1}-06-18",
            "last_night": f"{YEAR + 1}-06-23",
            "bookings_open_on": f"{YEAR + 1}-02-01", "bookings_open_time": "09:00", "price_cap": "950",
            "max_increase_pct": "10", "strike_limit": "3", "hold_minutes": "15",
            "free_cancellation_until": f"{YEAR + 1}-04-19", "late_cancellation_refund_pct": "50",
            "terms_version": "", "terms_text": ""}
    data.update(overrides)
    return data


def parse_calendar(client, url):
    """The iCalendar feed at `url`, checked for folding and CRLF line ends, parsed."""
    response = client.get(urlsplit(url).path)
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    raw = response.data
    assert all(len(line) <= 75 for line in raw.split(b"\r\n")), "lines must be folded at 75 octets"
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    return Calendar.from_ical(raw)
