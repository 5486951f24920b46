"""Issue 2 through the JSON API: accounts, vetting, seasons, listings, prices, publishing."""
from datetime import timedelta

import pytest

from app.services import pricing
from app.services.base import Actor
from tests.helpers import NOW, PASSWORD, YEAR


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "db": "ok", "worker": "late", "outbox": 0, "mail": "files"}


def test_register_and_token_and_me(api_as):
    anon = api_as()
    response = anon.post("/users", {"email": "Host@Example.se", "password": PASSWORD, "name": "Host", "role": "host"})
    assert response.status_code == 201
    assert response.get_json()["email"] == "host@example.se"
    assert anon.post("/users", {"email": "host@example.se", "password": PASSWORD, "name": "H",
                                "role": "host"}).get_json()["code"] == "email_taken"
    token = anon.post("/tokens", {"email": "host@example.se", "password": PASSWORD})
    assert token.status_code == 201
    anon.token = token.get_json()["token"]
    me = anon.get("/me").get_json()
    assert me["role"] == "host" and me["host"] is None


@pytest.mark.parametrize("body, field", [
    ({"role": "admin"}, "role"),
    ({"password": "short"}, "password"),
    ({"password": "password123"}, "password"),
    ({"email": "not-an-email"}, "email"),
])
def test_register_refuses_bad_input(api_as, body, field):
    payload = {"email": "a@example.se", "password": PASSWORD, "name": "A", "role": "coordinator", **body}
    response = api_as().post("/users", payload)
    assert response.status_code == 422
    data = response.get_json()
    assert response.mimetype == "application/problem+json"
    assert data["code"] == "invalid" and field in data["errors"]


def test_wrong_password_is_401(api_as, make_user):
    user = make_user("coordinator")
    response = api_as().post("/tokens", {"email": user.email, "password": "wrong-password!"})
    assert response.status_code == 401 and response.get_json()["code"] == "invalid_credentials"


def test_no_token_is_401_and_wrong_role_403(api_as, make_user):
    assert api_as().get("/me").status_code == 401
    coordinator = api_as(make_user("coordinator"))
    response = coordinator.post("/listings", {"title": "x", "address": "a", "postal_code": "621 56",
                                              "walking_minutes": 3})
    assert response.status_code == 403


@pytest.mark.parametrize("postal_code, ok", [("621 56", True), ("62156", True), ("623 50", True),
                                             ("111 22", False), ("63156", False), ("62a 11", False)])
def test_host_profile_requires_gotland_postal_code(api_as, make_user, postal_code, ok):
    host = api_as(make_user("host"))
    response = host.put("/host/profile", {"legal_name": "Karin AB", "phone": "+46 70 123 45 67",
                                          "address": "Strandgatan 1", "postal_code": postal_code,
                                          "right_to_rent": True})
    if ok:
        assert response.status_code == 200 and response.get_json()["vetting_status"] == "pending"
    else:
        assert response.status_code == 422 and response.get_json()["code"] == "not_on_gotland"


def test_admin_vetting_queue_and_decision(api_as, make_user, make_admin):
    host_user = make_user("host")
    host = api_as(host_user)
    host.put("/host/profile", {"legal_name": "Karin AB", "phone": "+46 70 123 45 67", "address": "Strandgatan 1",
                               "postal_code": "621 56", "right_to_rent": True})
    admin = api_as(make_admin())
    queue = admin.get("/admin/hosts?status=pending").get_json()["hosts"]
    assert [h["user_id"] for h in queue] == [host_user.id]
    response = admin.post(f"/admin/hosts/{host_user.id}/decision", {"decision": "approve", "reason": "ok"})
    assert response.status_code == 200 and response.get_json()["vetting_status"] == "approved"
    assert host.get("/admin/hosts").status_code == 403
    assert host.post(f"/admin/hosts/{host_user.id}/decision", {"decision": "approve"}).status_code == 403


def _season_body(**overrides):
    body = {"year": YEAR, "name": f"Almedalsveckan {YEAR}", "first_night": f"{YEAR}-06-20",
            "last_night": f"{YEAR}-06-25",
            "bookings_open_at": f"{YEAR}-02-01T09:00:00+01:00", "price_cap_ore": 90000, "max_increase_pct": 10,
            "strike_limit": 3, "hold_minutes": 15, "free_cancellation_until": f"{YEAR}-04-21",
            "late_cancellation_refund_pct": 50}
    body.update(overrides)
    return body


def test_admin_creates_and_patches_season(api_as, make_admin, make_user):
    admin = api_as(make_admin())
    response = admin.post("/admin/seasons", _season_body())
    assert response.status_code == 201
    season = response.get_json()
    assert season["terms_version"] and season["price_cap_ore"] == 90000
    assert admin.post("/admin/seasons", _season_body()).get_json()["code"] == "season_exists"
    patched = admin.patch(f"/admin/seasons/{YEAR}", {"price_cap_ore": 95000})
    assert patched.status_code == 200 and patched.get_json()["price_cap_ore"] == 95000
    seasons = api_as().get("/seasons").get_json()["seasons"]
    assert seasons[0]["year"] == YEAR and "terms_version" in seasons[0]
    assert api_as(make_user("host")).post("/admin/seasons", _season_body(year=YEAR + 1)).status_code == 403
    bad = admin.post("/admin/seasons", _season_body(year=YEAR + 2, first_night=f"{YEAR + 2}-06-25",
                                                    last_night=f"{YEAR + 2}-06-20"))
    assert bad.status_code == 422 and bad.get_json()["code"] == "invalid"


def _listing_with_bed(api):
    listing = api.post("/listings", {"title": "Rum", "description": "Fint", "address": "Strandgatan 1",
                                     "postal_code": "621 56", "walking_minutes": 5})
    assert listing.status_code == 201, listing.get_json()
    room = api.post(f"/listings/{listing.get_json()['id']}/rooms", {"name": "Sovrum"})
    assert room.status_code == 201
    bed = api.post(f"/rooms/{room.get_json()['id']}/beds", {"label": "Säng A", "kind": "single"})
    assert bed.status_code == 201
    return listing.get_json()["id"], bed.get_json()["id"]


def test_price_cap_and_publish_flow(api_as, make_host, make_season):
    season = make_season(bookings_open_at=NOW + timedelta(days=30))
    host = api_as(make_host())
    listing_id, bed_id = _listing_with_bed(host)
    unpriced = host.post(f"/listings/{listing_id}/publish", {"accept_terms_version": season.terms_version})
    assert unpriced.status_code == 422 and unpriced.get_json()["code"] == "bed_without_price"
    above = host.put(f"/beds/{bed_id}/prices/{YEAR}", {"price_ore": 90001})
    assert above.status_code == 422
    assert above.get_json()["code"] == "price_above_cap" and above.get_json()["max_allowed_ore"] == 90000
    assert host.put(f"/beds/{bed_id}/prices/{YEAR}", {"price_ore": 90000}).status_code == 200
    wrong_terms = host.post(f"/listings/{listing_id}/publish", {"accept_terms_version": "0.0"})
    assert wrong_terms.status_code == 422 and wrong_terms.get_json()["code"] == "terms_not_accepted"
    published = host.post(f"/listings/{listing_id}/publish", {"accept_terms_version": season.terms_version})
    assert published.status_code == 200
    public = api_as().get(f"/listings/{listing_id}?year={YEAR}")
    assert public.status_code == 200
    for year in ("abc", "²", "9" * 20):  # a superscript passes str.isdigit; a long number no column holds
        odd = api_as().get(f"/listings/{listing_id}?year={year}", headers={"Accept-Language": "sv"})
        assert odd.status_code == 422 and odd.get_json()["errors"]["year"] == ["Måste vara ett heltal (32 bitar)."]
    assert api_as().get(f"/listings/{listing_id}?year=2031").status_code == 404
    data = public.get_json()
    assert data["rooms"][0]["beds"][0]["price_ore"] == 90000 and data["host"]["verified_since"]
    assert host.post(f"/listings/{listing_id}/unpublish").status_code == 200
    assert api_as().get(f"/listings/{listing_id}").status_code == 404


def test_unapproved_host_cannot_publish(api_as, make_host, make_season):
    season = make_season()
    host = api_as(make_host(approved=False))
    listing_id, bed_id = _listing_with_bed(host)
    host.put(f"/beds/{bed_id}/prices/{YEAR}", {"price_ore": 50000})
    response = host.post(f"/listings/{listing_id}/publish", {"accept_terms_version": season.terms_version})
    assert response.status_code == 403 and response.get_json()["code"] == "host_not_approved"
    assert api_as().get(f"/listings/{listing_id}").status_code == 404


def test_year_over_year_limit(api_as, make_host, make_season, admin_actor):
    # Two seasons still ahead: a finished season's prices are refused (season_over).
    make_season(year=YEAR, bookings_open_at=NOW + timedelta(days=1))
    make_season(year=YEAR + 1, bookings_open_at=NOW + timedelta(days=30))
    host = api_as(make_host())
    _, bed_id = _listing_with_bed(host)
    assert host.put(f"/beds/{bed_id}/prices/{YEAR}", {"price_ore": 60000}).status_code == 200
    response = host.put(f"/beds/{bed_id}/prices/{YEAR + 1}", {"price_ore": 66001})
    assert response.status_code == 422
    assert response.get_json()["code"] == "increase_above_limit" and response.get_json()["max_allowed_ore"] == 66000
    assert host.put(f"/beds/{bed_id}/prices/{YEAR + 1}", {"price_ore": 66000}).status_code == 200


def test_price_frozen_after_booking_opens(api_as, make_host, make_season):
    season = make_season(bookings_open_at=NOW - timedelta(days=1))
    host = api_as(make_host())
    listing_id, bed_id = _listing_with_bed(host)
    assert host.put(f"/beds/{bed_id}/prices/{YEAR}", {"price_ore": 50000}).status_code == 200  # first price: allowed
    # On offer (published) since opening: from now on the price may only fall.
    assert host.post(f"/listings/{listing_id}/publish",
                     {"accept_terms_version": season.terms_version}).status_code == 200
    raised = host.put(f"/beds/{bed_id}/prices/{YEAR}", {"price_ore": 50100})
    assert raised.status_code == 409
    assert raised.get_json()["code"] == "price_frozen" and raised.get_json()["max_allowed_ore"] == 50000
    assert host.put(f"/beds/{bed_id}/prices/{YEAR}", {"price_ore": 45000}).status_code == 200


def test_refused_prices_are_logged(app, make_host, make_season, make_listing):
    from app.extensions import db
    from app.models import PriceChange
    from app.services.errors import DomainError
    make_season()
    host = make_host()
    listing = make_listing(host=host, beds=1)
    bed_id = listing.beds()[0].id
    with pytest.raises(DomainError) as raised:
        pricing.set_price(Actor(host.id, "host"), bed_id, YEAR, 1_000_000)
    assert raised.value.facts["max_allowed_ore"] == 50000  # frozen at its current price, since booking is open
    refused = db.session.query(PriceChange).filter_by(bed_id=bed_id, accepted=False).one()
    assert refused.requested_price_ore == 1_000_000 and refused.refusal_code == "price_above_cap"


def test_other_hosts_objects_are_404(api_as, make_host, make_season):
    make_season()
    owner = api_as(make_host())
    listing_id, bed_id = _listing_with_bed(owner)
    other = api_as(make_host())
    assert other.post(f"/listings/{listing_id}/rooms", {"name": "x"}).status_code == 404
    assert other.put(f"/beds/{bed_id}/prices/{YEAR}", {"price_ore": 100}).status_code == 404
    assert other.post(f"/listings/{listing_id}/publish", {"accept_terms_version": "x"}).status_code == 404


def test_api_errors_are_problem_json(api_as):
    anon = api_as()
    for response in (anon.get("/nope"), anon.delete("/seasons"), anon.post("/users", None)):
        assert response.mimetype == "application/problem+json", response.status_code
        assert {"type", "title", "status", "detail", "code"} <= set(response.get_json())


def test_the_api_answers_the_services_own_range_messages(api_as, make_admin, make_host):
    """Each range rule lives once, in its service: the API shows the service's words, not a copy of its own."""
    admin = api_as(make_admin())
    season = admin.post("/admin/seasons", _season_body(year=YEAR + 3, first_night=f"{YEAR + 3}-06-20",
                                                        last_night=f"{YEAR + 3}-06-27", hold_minutes=0,
                                                        price_cap_ore=10_000_001))
    assert season.status_code == 422
    assert season.get_json()["errors"]["hold_minutes"] == ["Mellan 1 och 1440 minuter."]
    assert season.get_json()["errors"]["price_cap_ore"] == ["Pristaket är högst 10000000 öre."]
    listing = api_as(make_host()).post("/listings", {"title": "Rum", "address": "Strandgatan 1",
                                                     "postal_code": "621 56", "walking_minutes": 601})
    assert listing.status_code == 422
    assert listing.get_json()["errors"] == {
        "walking_minutes": ["Minuters promenad till Almedalen, ett heltal från 0 till 600."]}
