"""The allocation round (API.md "The allocation round (fair opening)"): the round, requests, the published draw."""
from __future__ import annotations

from app.api import api
from app.api.common import Body, current_actor, json_body, roles
from app.models import AllocationRequest
from app.presenters import iso
from app.services import allocation
from app.services.access import owned_delegation
from app.services.proposals import DEFAULT_LISTINGS


def request_json(request: AllocationRequest) -> dict:
    """A request as its coordinator sees it."""
    return {"id": request.id, "ref": request.ref, "status": request.status, "rank": request.rank,
            "order_id": request.order_id, "waitlist_entry_id": request.waitlist_entry_id,
            "delegation_id": request.delegation_id, "check_in": iso(request.check_in),
            "check_out": iso(request.check_out), "beds": request.beds,
            "max_walking_minutes": request.max_walking_minutes, "max_price_ore": request.max_price_ore,
            "max_listings": request.max_listings, "preferred_listing_ids": allocation.preferred_ids(request),
            "payment_method": request.payment_method, "terms_version": request.terms_version,
            "accepted_at": iso(request.accepted_at), "created_at": iso(request.created_at)}


@api.get("/allocation/<int:year>")
def get_round(year):
    """The season's round: its times, status, the seed's commitment, the number of requests; the seed once drawn."""
    return allocation.public_round(year).as_json()


@api.get("/allocation/<int:year>/result")
def get_result(year):
    """The whole draw once it is done: the seed, its commitment, every request's ref, rank, outcome and beds."""
    return allocation.result(year)


@api.post("/allocation/<int:year>/requests")
@roles("coordinator")
def submit_request(year):
    """Make the organisation's one request in the round, with the season's contract accepted in advance."""
    actor = current_actor()
    body = Body(json_body())
    delegation_id, check_in, check_out = body.int("delegation_id"), body.date("check_in"), body.date("check_out")
    beds, payment_method = body.int("beds"), body.str("payment_method", max_length=10)
    max_walking_minutes = body.int("max_walking_minutes", required=False)
    max_price_ore = body.int("max_price_ore", required=False)
    max_listings = body.int("max_listings", required=False)
    preferred = body.int_list("preferred_listing_ids", required=False, max_items=5)
    accept_contract = body.bool("accept_contract", required=False) or False
    allocation.season_round(year)  # 404 before 422
    if body.errors and delegation_id is not None:
        owned_delegation(actor, delegation_id)
    body.done()
    made = allocation.submit_request(
        actor, year, delegation_id=delegation_id, check_in=check_in, check_out=check_out, beds=beds,
        payment_method=payment_method, accept_contract=accept_contract, max_walking_minutes=max_walking_minutes,
        max_price_ore=max_price_ore, max_listings=DEFAULT_LISTINGS if max_listings is None else max_listings,
        preferred_listing_ids=preferred or [])
    return request_json(made), 201


@api.get("/allocation/<int:year>/requests")
@roles("coordinator")
def list_requests(year):
    """The coordinator's requests in the round, newest first."""
    allocation.season_round(year)
    return {"requests": [request_json(r) for r in allocation.requests_for(current_actor(), year)]}


@api.get("/allocation/<int:year>/requests/<int:request_id>")
@roles("coordinator", "admin")
def get_request(year, request_id):
    """A request: its ref, status, rank and order (its coordinator, admin)."""
    return request_json(allocation.own_request(current_actor(), year, request_id))


@api.delete("/allocation/<int:year>/requests/<int:request_id>")
@roles("coordinator")
def withdraw_request(year, request_id):
    """Withdraw a request before the draw."""
    return request_json(allocation.withdraw_request(current_actor(), year, request_id))
