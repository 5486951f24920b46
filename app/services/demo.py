"""Demo data for `flask demo seed`: a season, vetted hosts with listings, a coordinator and an admin."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import User
from app.services import accounts, delegations, listings, pricing, seasons, vetting
from app.services.base import Actor
from app.services.terms import STANDARD_TERMS_TEXT, STANDARD_TERMS_VERSION

DEMO_PASSWORD = "almedalen-demo-2027"  # nosec B105 - public demo login, printed by `flask demo seed`
DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # nosec B105 - demo admin only
HOSTS = [
    ("Karin Lindqvist", "karin@example.se", "Karin Lindqvist", "Strandgatan 14", "621 56", [
        ("Rum med havsutsikt vid Strandgatan", 4, [("Sovrum 1", ["Säng A", "Säng B"]), ("Sovrum 2", ["Våningssäng övre", "Våningssäng undre"])], 72000),
    ]),
    ("Olof Pettersson", "olof@example.se", "Pettersson Uthyrning AB", "Adelsgatan 30", "621 57", [
        ("Lägenhet innanför ringmuren", 6, [("Stora rummet", ["Säng 1", "Säng 2", "Bäddsoffa"]), ("Lilla rummet", ["Säng 3"])], 65000),
        ("Gårdshus i Solberga", 18, [("Gårdshuset", ["Säng 1", "Säng 2", "Säng 3", "Säng 4"])], 45000),
    ]),
    ("Ann-Sofie Åberg", "annsofie@example.se", "Ann-Sofie Åberg", "Visborgsgatan 3", "621 41", [
        ("Villa Åberg, tre sovrum", 12, [("Blå rummet", ["Dubbelsäng vänster", "Dubbelsäng höger"]), ("Gula rummet", ["Säng 1"]), ("Vinden", ["Madrass 1", "Madrass 2"])], 58000),
    ]),
]


def seed_demo(now: datetime | None = None) -> list[tuple[str, str, str, str]]:
    """Create the demo data once; a second run only prints the logins."""
    now = now or datetime.now(UTC)
    logins = [("admin", "admin@sangplats.se", DEMO_PASSWORD, f"TOTP secret {DEMO_TOTP_SECRET}"),
              ("coordinator", "samordnare@example.se", DEMO_PASSWORD, "")]
    logins += [("host", email, DEMO_PASSWORD, "") for _, email, *_ in HOSTS]
    if db.session.scalar(select(User.id).where(User.email == "admin@sangplats.se")) is not None:
        return logins
    admin = accounts.create_admin("admin@sangplats.se", DEMO_PASSWORD, "Sängplats Admin",
                                  totp_secret=DEMO_TOTP_SECRET, now=now)
    admin_actor = Actor(admin.id, "admin")
    common = dict(strike_limit=3, hold_minutes=15, late_cancellation_refund_pct=50, max_increase_pct=10,
                  terms_version=STANDARD_TERMS_VERSION, terms_text=STANDARD_TERMS_TEXT)
    seasons.create_season(admin_actor, dict(
        year=2026, name="Almedalsveckan 2026", first_night=date(2026, 6, 21), last_night=date(2026, 6, 26),
        bookings_open_at=datetime(2026, 2, 1, 8, tzinfo=UTC), price_cap_ore=90000,
        free_cancellation_until=date(2026, 4, 22), **common), now=now)
    first_night = date(2027, 6, 20)
    season = seasons.create_season(admin_actor, dict(
        year=2027, name="Almedalsveckan 2027", first_night=first_night, last_night=date(2027, 6, 25),
        bookings_open_at=min(now, datetime(2027, 2, 1, 8, tzinfo=UTC)) - timedelta(days=1),
        price_cap_ore=90000, free_cancellation_until=first_night - timedelta(days=60), **common), now=now)
    for name, email, legal_name, address, postal_code, host_listings in HOSTS:
        user = accounts.register_user(email, DEMO_PASSWORD, name, "host", now=now)
        host = Actor(user.id, "host")
        vetting.submit_profile(host, legal_name=legal_name, phone="+46 498 12 34 56", address=address,
                               postal_code=postal_code, right_to_rent=True, now=now)
        vetting.decide(admin_actor, user.id, "approve", "Demo: identity and right to rent checked.", now=now)
        for title, walking, rooms, price in host_listings:
            listing = listings.create_listing(
                host, title=title, walking_minutes=walking, address=address, postal_code=postal_code,
                description=f"{title}. Nära till Almedalen, lugnt boende under politikerveckan.", now=now)
            for room_name, beds in rooms:
                room = listings.add_room(host, listing.id, room_name, now=now)
                for i, label in enumerate(beds):
                    bed = listings.add_bed(host, room.id, label, "bunk" if "Vånings" in label else
                                           "sofa" if "soffa" in label else "single", now=now)
                    pricing.set_price(host, bed.id, 2026, price - 2000 * i, now=now - timedelta(days=400))
                    pricing.set_price(host, bed.id, 2027, price + 3000 - 2000 * i, now=now)
            listings.publish(host, listing.id, season.terms_version, now=now)
    coordinator = accounts.register_user("samordnare@example.se", DEMO_PASSWORD, "Maja Samordnare", "coordinator",
                                         now=now)
    coord = Actor(coordinator.id, "coordinator")
    delegation = delegations.create_delegation(coord, "Föreningen Framtid Gotland", "802000-1239", now=now)
    for member_name in ("Lisa Andersson", "Erik Johansson", "Fatima Ali", "Jonas Berg"):
        delegations.add_member(coord, delegation.id, member_name,
                               member_name.lower().replace(" ", ".") + "@example.se", now=now)
    return logins
