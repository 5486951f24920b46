"""Accessibility: axe-core in real Chromium finds no serious or critical WCAG 2 A/AA violation on the
main pages, and the sign-in form works from the keyboard alone.

axe-core is the npm package pinned in tests/axe (installed by `make axe`); it is evaluated in the page
through the DevTools protocol, which the site's CSP (no inline scripts) does not govern. One live app
(SQLite) serves a world with a booking; each role signs in once in its own browser context.
"""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from app.services import allocation, seasons
from app.services import booking as booking_service
from app.services.base import Actor
from tests.browser import (
    FIRST_NIGHT,
    PASSWORD,
    axe_violations,
    bookable_world,
    chromium,
    describe,
    live_app,
    make_coordinator,
    make_delegation,
    new_tab,
    sign_in,
    totp_now,
)
from tests.helpers import YEAR

CHECK_OUT = date(YEAR, 6, 22)

PAGES = [
    ("public", "/"),
    ("public", "/listings"),
    ("public", "/listings/{listing}"),
    ("public", "/login"),
    ("public", "/register"),
    ("public", "/insyn"),
    ("public", "/contracts/verify"),
    ("host", "/host/"),
    ("host", "/host/listings/{listing}"),
    ("host", "/host/calendar"),
    ("host", "/host/profile"),
    ("host", "/host/listings/new"),
    ("host", "/host/bookings"),
    ("coordinator", "/coordinator/"),
    ("coordinator", f"/coordinator/search?check_in={YEAR}-06-20&check_out={YEAR}-06-22&beds=1"),
    ("coordinator", f"/coordinator/review?check_in={YEAR}-06-20&check_out={YEAR}-06-22&bed_ids={{free_bed}}"),
    ("coordinator", "/coordinator/bookings/{booking}"),
    ("coordinator", "/coordinator/bookings/{booking}/rooming"),
    ("coordinator", "/coordinator/delegations/{delegation}/block"),
    ("coordinator", "/coordinator/delegations/{delegation}"),
    ("coordinator", "/coordinator/bookings/{booking}/cancel"),
    ("coordinator", "/coordinator/waitlist/"),
    ("coordinator", f"/coordinator/fordelning/?year={YEAR + 1}"),
    ("public", f"/fordelning/{YEAR + 1}"),
    ("admin", "/admin/"),
    ("admin", "/admin/hosts"),
    ("admin", "/admin/flags"),
    ("admin", "/admin/seasons/new"),
    ("admin", f"/admin/seasons/{YEAR}/edit"),
    ("admin", "/admin/audit"),
    ("admin", "/admin/payments"),
    ("host", "/account/password"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The live app with a world in it, and the ids the page addresses need."""
    with live_app(tmp_path_factory.mktemp("a11y")) as served:
        world = bookable_world()
        coordinator = make_coordinator()
        delegation = make_delegation(coordinator, members=2)
        beds = [bed.id for bed in world.listing.beds()]
        booked = booking_service.create_booking(
            Actor(coordinator.id, "coordinator"), delegation_id=delegation.id, bed_ids=beds[:1],
            check_in=FIRST_NIGHT, check_out=CHECK_OUT, accept_contract=True, payment_method="invoice")
        # Next year's season opens with an allocation round, its requests open now; the coordinator has made one.
        now = datetime.now(UTC)
        seasons.create_season(Actor(world.admin.id, "admin"), {
            "year": YEAR + 1, "name": f"Almedalsveckan {YEAR + 1}", "first_night": date(YEAR + 1, 6, 19),
            "last_night": date(YEAR + 1, 6, 24), "bookings_open_at": now + timedelta(days=2), "price_cap_ore": 90000,
            "max_increase_pct": 10, "strike_limit": 3, "hold_minutes": 15,
            "free_cancellation_until": date(YEAR + 1, 4, 20), "late_cancellation_refund_pct": 50,
            "requests_open_at": now - timedelta(hours=1), "allocation_at": now + timedelta(days=1)})
        allocation.submit_request(Actor(coordinator.id, "coordinator"), YEAR + 1, delegation_id=delegation.id,
                                  check_in=date(YEAR + 1, 6, 20), check_out=date(YEAR + 1, 6, 22), beds=2,
                                  payment_method="invoice", accept_contract=True)
        served.ids = {"listing": world.listing.id, "booking": booked.id, "delegation": delegation.id,
                      "free_bed": beds[1]}
        served.logins = {"host": world.host.email, "coordinator": coordinator.email, "admin": world.admin.email}
        yield served


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def tabs(site, browser):
    """One signed-in browser context per role (an admin's code is accepted once, so sign in once)."""
    opened = {}

    def tab_for(role: str):
        if role not in opened:
            tab = new_tab(browser, site.base_url)
            if role != "public":
                sign_in(tab.page, site.logins[role], otp=totp_now() if role == "admin" else None)
                assert "/login" not in tab.page.url, f"{role} could not sign in: {tab.page.inner_text('main')}"
            opened[role] = tab
        return opened[role]

    yield tab_for
    for tab in opened.values():
        tab.close()


@pytest.mark.parametrize("width,height", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
@pytest.mark.parametrize("role,path", PAGES, ids=[f"{role}:{path.split('?')[0]}" for role, path in PAGES])
def test_no_serious_or_critical_axe_violation(site, tabs, role, path, width, height):
    page = tabs(role).page
    page.set_viewport_size({"width": width, "height": height})
    response = page.goto(path.format(**site.ids))
    assert response.status == 200, f"{path}: HTTP {response.status}"
    violations = axe_violations(page)
    assert not violations, f"{path} as {role}:\n{describe(violations)}"


def test_axe_runs_and_reports_what_it_should(browser):
    """The check can fail: a page with an unlabelled field and grey-on-grey text has serious violations."""
    tab = new_tab(browser, "http://127.0.0.1")
    tab.page.set_content('<html lang="sv"><head><title>Prov</title></head><body><main>'
                         '<h1>Prov</h1><input type="text" name="x"><p style="color:#bbb;background:#ccc">Grått</p>'
                         '</main></body></html>')
    found = {v["id"] for v in axe_violations(tab.page)}
    assert {"label", "color-contrast"} <= found, found
    tab.close()


def test_sign_in_works_from_the_keyboard_alone(site, browser):
    tab = new_tab(browser, site.base_url)
    page, keyboard = tab.page, tab.page.keyboard
    page.goto("/login")

    def focused(attribute: str = "name") -> str:
        return page.evaluate(f"() => document.activeElement.getAttribute('{attribute}') || ''")

    def outline_visible() -> bool:
        return page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
            return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0; }""")

    keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "Hoppa till innehållet"
    assert page.locator("a.skip").is_visible() and outline_visible()
    keyboard.press("Enter")  # the skip link: the next Tab starts in <main>
    keyboard.press("Tab")
    assert focused() == "email" and outline_visible()
    keyboard.type(site.logins["coordinator"])
    keyboard.press("Tab")
    assert focused() == "password"
    keyboard.type(PASSWORD)
    keyboard.press("Tab")
    assert focused() == "otp"
    keyboard.press("Tab")
    assert focused("type") == "submit" and outline_visible()
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "Logga in"
    keyboard.press("Shift+Tab")
    keyboard.press("Shift+Tab")
    assert focused() == "password"
    keyboard.press("Enter")  # Enter in a field submits the form
    page.wait_for_url(re.compile(r"/coordinator/(#main)?$"))
    assert "Hej Sara Samordnare" in page.inner_text("main")
    tab.close()
