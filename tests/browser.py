"""Shared helpers for the browser tests: the live app, Debian's Chromium, screenshots, a bookable world.

The app runs for real: a migrated SQLite file of its own, fresh data made through the services, and
werkzeug serving it on 127.0.0.1:<free port> in a thread. The test thread keeps an app context on the
same app, so it can make data with the services and read the database (after `fresh()`) while the
browser works. Chromium is Debian's package, driven by the `playwright` package through
`executable_path`; it is never downloaded. Without it a test skips saying why, and with CI=true it fails.
"""
from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from app import create_app
from app.extensions import db
from app.services import (
    accounts,
    delegations,
    flags,
    listings,
    pricing,
    seasons,
    vetting,
)
from app.services.base import Actor
from tests.helpers import YEAR
from tests.live_server import free_port, migrate

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
AXE_JS = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "correct-horse-battery"
ADMIN_TOTP_SECRET = "KRSXG5CTMVRXEZLUKN2XAZLFKRSXG5CT"  # nosec B105 - a test admin's known secret
PHONE = {"width": 390, "height": 844}
SEASON_YEAR = YEAR  # next year, from today (see tests/helpers.py)
FIRST_NIGHT = date(SEASON_YEAR, 6, 20)
LAST_NIGHT = date(SEASON_YEAR, 6, 25)


def missing(reason: str) -> None:
    """Skip a browser test for a missing tool, or fail it when CI=true makes it mandatory."""
    if IN_CI:
        pytest.fail(reason + "; CI=true makes the browser tests mandatory.")
    pytest.skip(reason)


def chromium_executable() -> str:
    executable = shutil.which("chromium")
    if executable is None:
        missing("Debian's chromium is not installed (`make chromium` or apt-get install -y chromium)")
    return executable


def axe_source() -> str:
    if not AXE_JS.exists():
        missing(f"axe-core is not installed at {AXE_JS.relative_to(ROOT)} (`make axe`)")
    return AXE_JS.read_text("utf-8")


# axe-core's WCAG 2 A/AA rules; a serious or critical violation fails a page (tests/test_accessibility.py).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
BLOCKING = ("serious", "critical")


def axe_violations(page) -> list[dict]:
    """Run axe-core's WCAG 2 A/AA rules on the page; the serious and critical violations."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    result = page.evaluate("""async (tags) => {
        const results = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
        return results.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary}))}));
    }""", WCAG_TAGS)
    return [v for v in result if v["impact"] in BLOCKING]


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['impact']}: {v['id']} – {v['help']}")
        lines += [f"    {n['target']}: {(n['summary'] or '').splitlines()[-1].strip()}" for n in v["nodes"][:8]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The live app
# ---------------------------------------------------------------------------------------------


@dataclass
class LiveApp:
    app: object
    base_url: str

    def url(self, path: str) -> str:
        return self.base_url + path


@contextmanager
def live_app(folder: Path) -> Iterator[LiveApp]:
    """The app on a freshly migrated SQLite file in `folder`, served over HTTP in a thread."""
    folder.mkdir(parents=True, exist_ok=True)
    database = f"sqlite:///{folder / 'browser.db'}"
    migrate(database)
    app = create_app("testing", {
        "SQLALCHEMY_DATABASE_URI": database,
        "UPLOAD_DIR": str(folder / "uploads"),
        "MAIL_OUTBOX_DIR": str(folder / "mail"),
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
        "HSTS": False,
    })
    context = app.app_context()
    context.push()
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveApp(app, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(timeout=10)
        db.session.remove()
        db.engine.dispose()
        context.pop()


def fresh() -> None:
    """Forget what the test thread's session knows, to read what the server wrote."""
    db.session.rollback()
    db.session.expire_all()


# ---------------------------------------------------------------------------------------------
# Chromium
# ---------------------------------------------------------------------------------------------


@contextmanager
def chromium() -> Iterator[object]:
    """Debian's Chromium, headless, through Playwright (never a downloaded browser)."""
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Tab:
    """A browser page in a fresh context (its own cookies), Swedish, with the page's errors collected."""

    page: object
    context: object
    errors: list = field(default_factory=list)

    def close(self) -> None:
        self.context.close()

    def csp_errors(self) -> list[str]:
        return [e for e in self.errors if "Content Security Policy" in e]


def new_tab(browser, base_url: str, *, width: int = 1280, height: int = 900, **context_options) -> Tab:
    context = browser.new_context(base_url=base_url, locale="sv-SE", timezone_id="Europe/Stockholm",
                                  viewport={"width": width, "height": height}, **context_options)
    context.set_default_timeout(15000)
    page = context.new_page()
    tab = Tab(page, context)
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    page.on("console", lambda message: tab.errors.append(message.text) if message.type == "error" else None)
    return tab


class Screenshots:
    """Numbered screenshots of a journey's steps: test-artifacts/journeys/<journey>/<nn>-<step>.png."""

    def __init__(self, page, journey: str):
        self.page = page
        self.folder = ARTIFACTS / "journeys" / journey
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.count = 0
        self.paths: list[Path] = []

    def __call__(self, step: str) -> Path:
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")
        path = self.folder / f"{self.count:02d}-{slug}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.paths.append(path)
        self.phone(f"{self.count:02d}-{slug}")
        return path

    def phone(self, name: str) -> None:
        """The same page at phone width (390x844): a screenshot, and nothing wider than the screen."""
        desktop = self.page.viewport_size
        self.page.set_viewport_size(PHONE)
        try:
            path = self.folder / f"{name}-phone.png"
            self.page.screenshot(path=str(path), full_page=True)
            self.paths.append(path)
            widths = self.page.evaluate(
                "() => [document.documentElement.scrollWidth, window.innerWidth, location.pathname]")
            assert widths[0] <= widths[1], (
                f"{widths[2]} overflows a {PHONE['width']} px phone: scrollWidth {widths[0]} > innerWidth {widths[1]}"
                f" (see {path.relative_to(ROOT)})")
        finally:
            self.page.set_viewport_size(desktop)


def sign_in(page, email: str, password: str = PASSWORD, otp: str | None = None) -> None:
    """Sign in through the real form, by typing and clicking."""
    page.goto("/login")
    page.get_by_label("E-post").fill(email)
    page.get_by_label("Lösenord").fill(password)
    if otp is not None:
        page.get_by_label("Engångskod (admin)").fill(otp)
    page.locator("main form").get_by_role("button", name="Logga in").click()
    page.wait_for_load_state()


def totp_now(secret: str = ADMIN_TOTP_SECRET) -> str:
    import pyotp
    return pyotp.TOTP(secret).now()


def main_text(page) -> str:
    return page.inner_text("main")


# ---------------------------------------------------------------------------------------------
# A world made through the services
# ---------------------------------------------------------------------------------------------


@dataclass
class World:
    admin: object = None
    season: object = None
    host: object = None
    listing: object = None
    pending_host: object = None
    coordinator: object = None
    delegation: object = None
    flag: object = None
    extra: dict = field(default_factory=dict)

    @property
    def admin_actor(self) -> Actor:
        return Actor(self.admin.id, "admin")


def make_admin(email: str = "admin@example.se") -> object:
    return accounts.create_admin(email, PASSWORD, "Astrid Admin", totp_secret=ADMIN_TOTP_SECRET)


def make_season(admin, now: datetime | None = None):
    now = now or datetime.now(UTC)
    return seasons.create_season(Actor(admin.id, "admin"), {
        "year": SEASON_YEAR, "name": f"Almedalsveckan {SEASON_YEAR}", "first_night": FIRST_NIGHT,
        "last_night": LAST_NIGHT, "bookings_open_at": now - timedelta(days=1), "price_cap_ore": 90000,
        "max_increase_pct": 10, "strike_limit": 3, "hold_minutes": 15,
        "free_cancellation_until": FIRST_NIGHT - timedelta(days=60), "late_cancellation_refund_pct": 50})


def make_host(admin, email: str, name: str, *, legal_name: str | None = None, approved: bool = True):
    user = accounts.register_user(email, PASSWORD, name, "host")
    vetting.submit_profile(Actor(user.id, "host"), legal_name=legal_name or f"{name} AB", phone="+46 498 123 456",
                           address="Strandgatan 1", postal_code="621 56", right_to_rent=True)
    if approved:
        vetting.decide(Actor(admin.id, "admin"), user.id, "approve", "Kontrollerad.")
    return user


def make_listing(host, season, *, title: str = "Rum vid Strandgatan", beds: int = 2, price_ore: int = 65000,
                 walking_minutes: int = 8):
    actor = Actor(host.id, "host")
    listing = listings.create_listing(actor, title=title, description="Ljust rum nära Almedalen.",
                                      address="Strandgatan 1", postal_code="621 56",
                                      walking_minutes=walking_minutes)
    room = listings.add_room(actor, listing.id, "Sovrum 1")
    for n in range(beds):
        bed = listings.add_bed(actor, room.id, f"Säng {n + 1}", "single")
        pricing.set_price(actor, bed.id, season.year, price_ore)
    listings.publish(actor, listing.id, season.terms_version)
    return listing


def make_coordinator(email: str = "samordnare@example.se", name: str = "Sara Samordnare"):
    return accounts.register_user(email, PASSWORD, name, "coordinator")


def make_delegation(coordinator, members: int = 2):
    actor = Actor(coordinator.id, "coordinator")
    delegation = delegations.create_delegation(actor, "Föreningen Framtid", "802000-1239")
    for n in range(members):
        delegations.add_member(actor, delegation.id, f"Medlem {n + 1}", f"medlem{n + 1}@example.se")
    return delegation


def make_flag(admin, host, description: str = "Värden bad om extra betalning vid ankomsten."):
    return flags.create_flag(Actor(admin.id, "admin"), host_id=host.id, category="overcharging",
                             description=description)


def bookable_world() -> World:
    """An admin (TOTP), the season, an approved host with a published listing, a pending host, an open flag."""
    world = World()
    world.admin = make_admin()
    world.season = make_season(world.admin)
    world.host = make_host(world.admin, "karin@example.se", "Karin Lindqvist", legal_name="Karin Lindqvist")
    world.listing = make_listing(world.host, world.season)
    world.pending_host = make_host(world.admin, "olof@example.se", "Olof Pettersson",
                                   legal_name="Pettersson Uthyrning AB", approved=False)
    world.flag = make_flag(world.admin, world.host)
    return world
