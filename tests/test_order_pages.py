"""Issue 12, the coordinator's pages for a whole group proposal: search → review of every contract → one order,
the order page, and one card entry paying all its card bookings (against localstripe)."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Booking, Contract, IdempotencyKey, Order, Payment
from app.services import idempotency
from app.services.errors import Conflict, DomainError, ValidationFailed
from tests.helpers import CHECK_IN, CHECK_OUT, YEAR, csrf_from, signed_in
from tests.stripe_fixtures import authenticate_3ds, booking_status, card_method

THREE_D_SECURE_CARD = "4000002760003184"


@pytest.fixture
def world(app, make_listing, make_user, make_delegation):
    """Two 2-bed listings (500 and 400 kr a bed-night): four beds need both. A coordinator signed in."""
    near = make_listing(beds=2, price_ore=50000, title="Gästhem vid Almedalen", walking_minutes=5)
    far = make_listing(beds=2, price_ore=40000, title="Stuga vid Hamnen", walking_minutes=12)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    return {"near": near, "far": far, "parts": [[b.id for b in near.beds()], [b.id for b in far.beds()]],
            "coordinator": coordinator, "delegation": delegation, "browser": signed_in(app, coordinator)}


def review_url(parts, check_in=CHECK_IN, check_out=CHECK_OUT) -> str:
    query = [("check_in", check_in.isoformat()), ("check_out", check_out.isoformat())]
    query += [("parts", ",".join(map(str, bed_ids))) for bed_ids in parts]
    return "/coordinator/orders/review?" + urlencode(query)


def order_form(page, world, **changes) -> dict:
    """The review page's form as a browser would submit it (the page's own hidden fields and one-time token)."""
    html = page.get_data(as_text=True)
    token = re.search(r'name="token" type="hidden" value="([^"]+)"', html).group(1)
    data = {"csrf_token": csrf_from(page), "token": token, "check_in": CHECK_IN.isoformat(),
            "check_out": CHECK_OUT.isoformat(), "parts": re.findall(r'name="parts" value="([\d,]+)"', html),
            "delegation_id": world["delegation"].id, "payment_method": "invoice", "accept_contract": "y"}
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def counts() -> tuple[int, int, int]:
    db.session.rollback()
    return (db.session.scalar(select(func.count(Order.id))), db.session.scalar(select(func.count(Booking.id))),
            db.session.scalar(select(func.count(Contract.id))))


def text(response) -> str:
    return response.get_data(as_text=True).replace("\u00a0", " ")


def test_search_offers_to_book_the_whole_proposal(world):
    found = world["browser"].get(f"/coordinator/search?check_in={CHECK_IN}&check_out={CHECK_OUT}&beds=4")

    html = found.get_data(as_text=True)
    assert found.status_code == 200 and "kommer senare" not in html
    proposal = html.split('class="card proposal"')[1].split("</article>")[0]
    form = proposal.split('<form method="get" action="/coordinator/orders/review"')[1].split("</form>")[0]
    assert "Boka hela förslaget" in form
    assert sorted(re.findall(r'name="parts" value="([\d,]+)"', form)) == sorted(
        ",".join(map(str, bed_ids)) for bed_ids in world["parts"])
    fields = dict(re.findall(r'name="(check_in|check_out)" value="([^"]+)"', form))
    assert fields == {"check_in": CHECK_IN.isoformat(), "check_out": CHECK_OUT.isoformat()}
    query = [(name, value) for name, value in re.findall(r'name="(\w+)" value="([^"]+)"', form)]
    review = world["browser"].get("/coordinator/orders/review?" + urlencode(query))
    assert review.status_code == 200 and "Gästhem vid Almedalen" in text(review) and "Stuga vid Hamnen" in text(review)


def test_review_shows_every_parts_contract_the_terms_once_and_the_total(world):
    review = world["browser"].get(review_url(world["parts"]))

    html = text(review)
    assert review.status_code == 200
    parts = html.split('class="card contract-preview order-part"')[1:]
    assert len(parts) == 2
    near, far = parts
    assert "Avtal 1 av 2: Gästhem vid Almedalen" in near and "Avtal 2 av 2: Stuga vid Hamnen" in far
    for part, listing, price, total in ((near, world["near"], "500 kr", "2 000 kr"),
                                        (far, world["far"], "400 kr", "1 600 kr")):
        assert f"{listing.host.name} AB" in part                       # the host, a party to the contract
        assert listing.address in part and f"{listing.walking_minutes} minuters promenad" in part
        assert part.count(f'class="num">{price}</td>') == 4            # 2 beds x 2 nights, each priced
        assert f"<strong>{total}</strong>" in part                     # the part's total
        assert "Säng 1" in part and "Säng 2" in part
    assert html.count('<pre class="terms"') == 1 and "Sängplats standardvillkor" in html  # the terms once
    assert '<strong id="order-total">3 600 kr</strong>' in html
    assert "Föreningen Framtid" in html and "Jag accepterar de bindande avtalen" in html
    assert 'value="invoice"' in html and 'value="card"' in html
    assert re.search(r'name="token" type="hidden" value="[\w-]{16,}"', html)
    assert counts() == (0, 0, 0)  # a review books nothing


def test_posting_without_accepting_is_a_form_error_and_books_nothing(world):
    review = world["browser"].get(review_url(world["parts"]))

    response = world["browser"].post("/coordinator/orders/review",
                                     data=order_form(review, world, accept_contract=None))

    assert response.status_code == 422
    assert "Kryssa i att du accepterar avtalen för att boka." in text(response)
    assert "Stuga vid Hamnen" in text(response)  # the contracts are still on the page
    assert counts() == (0, 0, 0)


def test_an_invoice_order_books_every_part_and_its_page_shows_them(world, api_as, make_booking):
    review = world["browser"].get(review_url(world["parts"]))

    response = world["browser"].post("/coordinator/orders/review", data=order_form(review, world))

    assert response.status_code == 302, text(response)
    order = db.session.scalar(select(Order))
    assert response.location.endswith(f"/coordinator/orders/{order.id}")
    assert counts() == (1, 2, 2)
    bookings = db.session.scalars(select(Booking).order_by(Booking.id)).all()
    assert {b.order_id for b in bookings} == {order.id} and order.total_ore == 360000
    assert sorted(b.listing_id for b in bookings) == sorted((world["near"].id, world["far"].id))
    page = world["browser"].get(response.location)
    html = text(page)
    assert page.status_code == 200 and 'data-order-status="confirmed"' in html and "3 600 kr" in html
    assert "Beställningen är gjord: 2 bokningar." in html
    for booking in bookings:
        card = html.split(f'id="booking-{booking.id}"')[1].split("</li>")[0]
        assert f'href="/coordinator/bookings/{booking.id}"' in card and booking.listing.title in card
        assert booking.contract.number in card and f"/coordinator/contracts/{booking.contract.id}.pdf" in card
        assert booking.invoice_number in card and "Förfallodag" in card and "Bekräftad" in card
    # The bookings list and the dashboard lead to the order; the API says which order a booking belongs to.
    for listing_page in ("/coordinator/bookings", "/coordinator/"):
        assert f'href="/coordinator/orders/{order.id}"' in world["browser"].get(listing_page).get_data(as_text=True)
    booking_page = world["browser"].get(f"/coordinator/bookings/{bookings[0].id}").get_data(as_text=True)
    assert f'href="/coordinator/orders/{order.id}"' in booking_page
    api = api_as(world["coordinator"])
    assert api.get(f"/bookings/{bookings[0].id}").get_json()["order_id"] == order.id
    alone = make_booking(coordinator=world["coordinator"])
    assert api.get(f"/bookings/{alone.id}").get_json()["order_id"] is None


def test_a_double_submit_of_one_form_makes_one_order(world):
    review = world["browser"].get(review_url(world["parts"]))
    data = order_form(review, world)

    first = world["browser"].post("/coordinator/orders/review", data=data)
    second = world["browser"].post("/coordinator/orders/review", data=data)

    assert first.status_code == second.status_code == 302
    assert first.location == second.location
    assert counts() == (1, 2, 2)
    # A new review is a new form: its token books again (and finds the beds taken).
    again = world["browser"].get(review_url(world["parts"]))
    refused = world["browser"].post("/coordinator/orders/review", data=order_form(again, world))
    assert refused.status_code == 409 and counts() == (1, 2, 2)


def test_a_bed_taken_meanwhile_rerenders_the_review_with_the_conflict_and_books_nothing(world, make_booking):
    review = world["browser"].get(review_url(world["parts"]))
    taken_bed = world["parts"][1][1]
    make_booking(bed_ids=[taken_bed])  # nights 21 and 22 June, another delegation: night 21 overlaps

    response = world["browser"].post("/coordinator/orders/review", data=order_form(review, world))

    html = text(response)
    assert response.status_code == 409
    conflicts = html.split('aria-labelledby="conflicts-title"')[1].split("</section>")[0]
    assert "Stuga vid Hamnen" in conflicts and "Gästhem vid Almedalen" not in conflicts
    taken = re.findall(r'<li class="taken"><span class="bed">([^<]*)</span>[^<]*<time datetime="([\d-]+)"', conflicts)
    assert taken == [("Rum 1 / Säng 2", f"{YEAR}-06-21")]
    assert "/coordinator/search?" in conflicts and "Sök igen" in conflicts
    assert counts() == (0, 1, 1)  # only the other delegation's booking
    assert re.search(r'name="token" type="hidden" value="([^"]+)"', html).group(1) != order_form(
        review, world)["token"]  # a new token for what is submitted next
    # Shown again, the review says at once which bed is no longer free and offers a new search.
    again = text(world["browser"].get(review_url(world["parts"])))
    alert = again.split('aria-labelledby="taken-title"')[1].split("</section>")[0]
    assert "Inte längre lediga" in alert and "Rum 1 / Säng 2" in alert and "Sök igen" in alert


def _card_order(world):
    review = world["browser"].get(review_url(world["parts"]))
    response = world["browser"].post("/coordinator/orders/review",
                                     data=order_form(review, world, payment_method="card"))
    order = db.session.scalar(select(Order))
    assert response.status_code == 302 and response.location.endswith(f"/coordinator/orders/{order.id}/pay")
    return order, [b.id for b in order.bookings]


def _pay(world, order, payment_method_id):
    page = world["browser"].get(f"/coordinator/orders/{order.id}/pay")
    assert page.status_code == 200, text(page)
    return page, world["browser"].post(f"/coordinator/orders/{order.id}/pay", headers={"Accept": "application/json"},
                                       data={"csrf_token": csrf_from(page), "payment_method_id": payment_method_id})


def test_a_card_order_is_paid_for_every_booking_with_one_card_entry(world, stripe_app, no_stripe_webhooks):
    order, booking_ids = _card_order(world)
    assert [booking_status(b) for b in booking_ids] == ["awaiting_payment"] * 2

    page, paid = _pay(world, order, card_method("4242424242424242"))

    html = text(page)
    assert 'data-client-secret="seti_' in html and "js/pay.js" in html and "Betala 3 600 kr" in html
    assert paid.status_code == 201, paid.get_json()
    assert paid.get_json() == {"status": "succeeded", "client_secrets": [],
                               "status_url": f"/coordinator/orders/{order.id}"}
    assert [booking_status(b) for b in booking_ids] == ["confirmed"] * 2
    rows = db.session.scalars(select(Payment).where(Payment.booking_id.in_(booking_ids))).all()
    assert sorted((p.booking_id, p.status) for p in rows) == [(b, "succeeded") for b in sorted(booking_ids)]
    assert len({p.payment_method_id for p in rows}) == 1 and len({p.stripe_payment_intent_id for p in rows}) == 2
    assert sorted(p.amount_ore for p in rows) == [160000, 200000]
    shown = text(world["browser"].get(f"/coordinator/orders/{order.id}"))
    assert 'data-order-status="confirmed"' in shown and "Betalningen är mottagen" in shown
    assert "Betala hela beställningen med kort" not in shown
    after = world["browser"].get(f"/coordinator/orders/{order.id}/pay")
    assert after.status_code == 302 and after.location.endswith(f"/coordinator/orders/{order.id}")


def test_a_declined_card_pays_nothing_and_the_order_can_be_paid_again(world, stripe_app, no_stripe_webhooks):
    order, booking_ids = _card_order(world)

    _page, declined = _pay(world, order, "pm_card_chargeCustomerFail")

    assert declined.status_code == 402
    body = declined.get_json()
    assert body["code"] == "card_declined" and body["setup_client_secret"].startswith("seti_")
    assert [booking_status(b) for b in booking_ids] == ["awaiting_payment"] * 2
    shown = text(world["browser"].get(f"/coordinator/orders/{order.id}"))
    assert 'data-order-status="awaiting_payment"' in shown and "Betala hela beställningen med kort" in shown
    _page, paid = _pay(world, order, "pm_card_visa")
    assert paid.status_code == 201 and [booking_status(b) for b in booking_ids] == ["confirmed"] * 2


def test_three_d_secure_for_every_booking_then_the_order_page_confirms(world, stripe_app, no_stripe_webhooks,
                                                                       localstripe_base):
    order, booking_ids = _card_order(world)

    _page, answer = _pay(world, order, card_method(THREE_D_SECURE_CARD))

    body = answer.get_json()
    assert answer.status_code == 201 and body["status"] == "requires_action" and len(body["client_secrets"]) == 2
    for payment in db.session.scalars(select(Payment).where(Payment.booking_id.in_(booking_ids))):
        assert payment.status == "requires_action"
        secret = next(s for s in body["client_secrets"] if s.startswith(payment.stripe_payment_intent_id))
        authenticate_3ds(localstripe_base, payment.stripe_payment_intent_id, secret)  # what Stripe.js does
    page = world["browser"].get(f"/coordinator/orders/{order.id}")
    assert 'data-order-status="awaiting_payment"' in text(page)  # no webhook here: the page offers to ask Stripe
    checked = world["browser"].post(f"/coordinator/orders/{order.id}/payment/check",
                                    data={"csrf_token": csrf_from(page)}, follow_redirects=True)
    assert 'data-order-status="confirmed"' in text(checked)
    assert [booking_status(b) for b in booking_ids] == ["confirmed"] * 2


def test_paying_without_javascript_says_why(world, stripe_app, no_stripe_webhooks):
    order, _booking_ids = _card_order(world)
    page = world["browser"].get(f"/coordinator/orders/{order.id}/pay")
    response = world["browser"].post(f"/coordinator/orders/{order.id}/pay", data={"csrf_token": csrf_from(page)},
                                     follow_redirects=True)
    assert "Kortbetalning kräver JavaScript" in text(response)


def test_another_coordinator_or_a_host_cannot_see_the_order(app, world, make_user):
    review = world["browser"].get(review_url(world["parts"]))
    world["browser"].post("/coordinator/orders/review", data=order_form(review, world))
    order = db.session.scalar(select(Order))

    stranger = signed_in(app, make_user("coordinator"))
    for path in (f"/coordinator/orders/{order.id}", f"/coordinator/orders/{order.id}/pay"):
        assert stranger.get(path).status_code == 404
    page = stranger.get("/coordinator/")
    assert stranger.post(f"/coordinator/orders/{order.id}/payment/check",
                         data={"csrf_token": csrf_from(page)}).status_code == 404
    assert signed_in(app, world["near"].host).get(f"/coordinator/orders/{order.id}").status_code == 403


def test_an_order_for_someone_elses_delegation_is_refused(app, world, make_user, make_delegation):
    other = make_user("coordinator")
    browser = signed_in(app, other)
    make_delegation(other)
    review = browser.get(review_url(world["parts"]))

    response = browser.post("/coordinator/orders/review", data=order_form(review, world))

    assert response.status_code == 422  # not one of the coordinator's own delegations
    assert counts() == (0, 0, 0)


def test_a_submit_while_the_same_forms_first_is_still_booking_shows_that_and_books_nothing(world):
    review = world["browser"].get(review_url(world["parts"]))
    data = order_form(review, world)
    assert world["browser"].post("/coordinator/orders/review", data=data).status_code == 302
    # As if that first submit were still booking when the second arrives (a double click): its key is reserved.
    row = db.session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == f"order-page:{data['token']}"))
    row.response_status, row.created_at = idempotency.IN_PROGRESS, datetime.now(UTC)
    db.session.commit()

    response = world["browser"].post("/coordinator/orders/review", data=data)

    assert response.status_code == 409
    html = text(response)
    assert "Den första behandlas fortfarande, och det blir bara en beställning." in html
    assert 'name="token"' not in html  # no form to submit a third time
    assert counts() == (1, 2, 2)


def test_a_proposal_that_cannot_be_read_is_sent_back_to_the_search(world):
    response = world["browser"].get(f"/coordinator/orders/review?check_in={CHECK_IN}&check_out={CHECK_OUT}&parts=1,x")
    assert response.status_code == 302 and response.location.endswith("/coordinator/search")
    review = world["browser"].get(review_url(world["parts"]))
    posted = world["browser"].post("/coordinator/orders/review", data=order_form(review, world, parts=["1,x"]))
    assert posted.status_code == 422
    assert "Förslagets bäddar kunde inte läsas." in text(posted) and counts() == (0, 0, 0)


def test_parts_in_one_listing_are_refused_on_the_review(world):
    near = world["parts"][0]
    response = world["browser"].get(review_url([near[:1], near[1:]]))
    assert response.status_code == 422
    assert "Två delar av beställningen gäller samma boende." in text(response)
    assert 'name="token"' not in text(response)


def test_a_repeated_submit_gets_the_first_refusal_without_trying_again(world):
    """The page's idempotency replays a refusal too (idempotency.run_or_raise), as the API replays its answer."""
    calls = []

    def refuse():
        calls.append("conflict")
        raise Conflict("Taget.", code="bed_nights_taken", conflicts=[{"bed_id": 1, "night": f"{YEAR}-06-20"}])

    def invalid():
        calls.append("invalid")
        raise ValidationFailed({"x": ["Fel."]})

    for _attempt in range(2):
        with pytest.raises(DomainError) as refused:
            idempotency.run_or_raise(world["coordinator"].id, "order-page:replay-key-0001", {"a": 1}, refuse)
        assert (refused.value.code, refused.value.status, refused.value.message) == ("bed_nights_taken", 409, "Taget.")
        assert refused.value.facts["conflicts"] == [{"bed_id": 1, "night": f"{YEAR}-06-20"}]
        with pytest.raises(ValidationFailed) as replayed:
            idempotency.run_or_raise(world["coordinator"].id, "order-page:replay-key-0002", {"a": 1}, invalid)
        assert replayed.value.errors == {"x": ["Fel."]}
    assert calls == ["conflict", "invalid"]
