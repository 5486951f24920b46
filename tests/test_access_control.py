"""Every route that takes an object id, walked from app.url_map: strangers never get the object.

For each such route and method, another host, another coordinator and an anonymous visitor must
get 401/403/404/405 (API) or 403/404/405/a redirect to the sign-in page (HTML) — never a 2xx,
except for the few routes that are public by design (listed below with why).
"""
import re
from datetime import date

import pytest

from app.services import booking as booking_service
from app.services import flags
from app.services.base import Actor
from tests.helpers import PASSWORD, YEAR, csrf_from

# Public by design: the published listing, public contract verification, secret-token calendars, a season's
# allocation round and its published draw.
PUBLIC = {
    ("GET", "/api/v1/listings/<int:listing_id>"),
    ("GET", "/listings/<int:listing_id>"),
    ("GET", "/api/v1/allocation/<int:year>"),
    ("GET", "/api/v1/allocation/<int:year>/result"),
    ("GET", "/fordelning/<int:year>"),
}
SKIP_ARGS = {"token", "filename", "path"}  # secrets or static files, not object ids


@pytest.fixture
def world(make_listing, make_user, make_delegation, make_host, make_admin, api_as, app):
    listing = make_listing(beds=2)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    actor = Actor(coordinator.id, "coordinator")
    booking = booking_service.create_booking(
        actor, delegation_id=delegation.id, bed_ids=[listing.beds()[0].id], check_in=date(YEAR, 6, 21),
        check_out=date(YEAR, 6, 22), accept_contract=True, payment_method="invoice")
    card = booking_service.create_booking(
        actor, delegation_id=delegation.id, bed_ids=[listing.beds()[1].id], check_in=date(YEAR, 6, 21),
        check_out=date(YEAR, 6, 22), accept_contract=True, payment_method="card")
    flag = flags.create_flag(actor, host_id=listing.host_id, category="other", description="x",
                             booking_id=booking.id)
    ids = {
        "listing_id": listing.id, "room_id": listing.rooms[0].id, "bed_id": listing.beds()[0].id,
        "booking_id": booking.id, "contract_id": booking.contract.id, "delegation_id": delegation.id,
        "member_id": delegation.members[0].id, "flag_id": flag.id, "user_id": listing.host_id,
        "host_id": listing.host_id, "year": YEAR, "card_booking_id": card.id,
    }
    return {"ids": ids, "strangers": {"host": make_host(), "coordinator": make_user("coordinator")},
            "owner": coordinator}


def _html_client(app, user):
    client = app.test_client()
    if user is not None:
        page = client.get("/login")
        response = client.post("/login", data={"csrf_token": csrf_from(page), "email": user.email,
                                               "password": PASSWORD})
        assert response.status_code == 302
    page = client.get("/login")
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    return client, match.group(1) if match else ""


def _object_routes(app):
    for rule in app.url_map.iter_rules():
        args = set(rule.arguments)
        if not args or rule.endpoint == "static" or args & SKIP_ARGS:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def _fill(rule, ids):
    values = {}
    for arg in rule.arguments:
        key = arg if arg in ids else None
        if key is None:
            for known in ids:
                if arg.endswith(known) or known.startswith(arg.rstrip("_id")):
                    key = known
                    break
        values[arg] = ids.get(key, 1)
    path = rule.rule
    for arg, value in values.items():
        path = re.sub(r"<(?:[^:<>]+:)?" + arg + r">", str(value), path)
    return path


def test_strangers_never_get_another_partys_objects(app, world, api_as):
    from app.services.accounts import issue_token
    checked, failures = 0, []
    tokens = {name: issue_token(user) for name, user in world["strangers"].items()}
    tokens["anonymous"] = None
    html_clients = {name: _html_client(app, user) for name, user in world["strangers"].items()}
    html_clients["anonymous"] = _html_client(app, None)
    for rule, method in _object_routes(app):
        path = _fill(rule, world["ids"])
        public = (method, rule.rule) in PUBLIC
        for who in ("host", "coordinator", "anonymous"):
            if path.startswith("/api/"):
                headers = {"Authorization": f"Bearer {tokens[who]}"} if tokens[who] else {}
                response = app.test_client().open(path, method=method, headers=headers, json={})
                allowed = {401, 403, 404, 405}
            else:
                client, csrf = html_clients[who]
                data = {"csrf_token": csrf} if method != "GET" else None
                response = client.open(path, method=method, data=data)
                allowed = {403, 404, 405}
                if response.status_code == 302 and "/login" in response.headers.get("Location", ""):
                    allowed = {302}
            checked += 1
            if public and response.status_code == 200:
                continue
            if response.status_code not in allowed:
                failures.append(f"{who} {method} {path} -> {response.status_code}")
    assert checked > 50, f"only {checked} route checks ran"
    assert not failures, "\n".join(failures)


def test_the_walk_uses_real_ids(app, world, api_as):
    """Control: the owner does get these objects, so the strangers' 404s above are meaningful."""
    owner = api_as(world["owner"])
    ids = world["ids"]
    for path in (f"/bookings/{ids['booking_id']}", f"/contracts/{ids['contract_id']}",
                 f"/delegations/{ids['delegation_id']}"):
        assert owner.get(path).status_code == 200, path
