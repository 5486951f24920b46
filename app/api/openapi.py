"""The OpenAPI 3 document for /api/v1 (GET /api/v1/openapi.json)."""
from __future__ import annotations

from app.api import api

PROBLEM = {"$ref": "#/components/schemas/Problem"}
OBJ = {"type": "object"}


def _str(fmt=None, **kw):
    schema = {"type": "string", **kw}
    if fmt:
        schema["format"] = fmt
    return schema


INT = {"type": "integer"}
BOOL = {"type": "boolean"}
DATE = _str("date")
DATETIME = _str("date-time")
INVOICE_DETAILS = {"buyer_reference": _str(), "invoice_email": _str("email"), "address": _str(),
                   "postal_code": _str(), "city": _str()}

SEASON_FIELDS = {
    "year": {"type": "integer", "minimum": 2000, "maximum": 2100}, "name": _str(maxLength=120),
    "first_night": DATE, "last_night": DATE, "bookings_open_at": DATETIME,
    "price_cap_ore": {"type": "integer", "minimum": 1}, "max_increase_pct": {"type": "integer", "minimum": 0,
                                                                             "maximum": 100},
    "strike_limit": {"type": "integer", "minimum": 1}, "hold_minutes": {"type": "integer", "minimum": 1},
    "free_cancellation_until": DATE,
    "late_cancellation_refund_pct": {"type": "integer", "minimum": 0, "maximum": 100},
    "terms_version": _str(maxLength=40), "terms_text": _str(),
    "max_beds_per_organisation": {"type": ["integer", "null"], "minimum": 1, "maximum": 100000},
    "max_open_holds": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 3},
    # The allocation round (optional): both times or neither (null removes a round without requests).
    "requests_open_at": {"type": ["string", "null"], "format": "date-time"},
    "allocation_at": {"type": ["string", "null"], "format": "date-time"},
    "allocation_payment_hours": {"type": "integer", "minimum": 1, "maximum": 720, "default": 48},
    "unpaid_invoice_cancel_days": {"type": "integer", "minimum": 9, "maximum": 365, "default": 14},
}
OPTIONAL_SEASON_FIELDS = ("terms_version", "terms_text", "max_beds_per_organisation", "max_open_holds",
                          "requests_open_at", "allocation_at", "allocation_payment_hours", "unpaid_invoice_cancel_days")


def body(properties: dict, required: list[str] | None = None) -> dict:
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def op(summary, *, tag, auth=True, request=None, ok=200, ok_schema=None, errors=(), params=(), ok_type=None):
    responses = {str(ok): {"description": "Success", "content": {
        ok_type or "application/json": {"schema": ok_schema or OBJ}}}}
    codes = set(errors) | ({401, 403, 404, 422} if auth else {404, 422})
    for code in sorted(codes):
        responses[str(code)] = {"description": "Problem", "content": {"application/problem+json": {"schema": PROBLEM}}}
    operation = {"summary": summary, "tags": [tag], "responses": responses}
    if auth:
        operation["security"] = [{"bearer": []}]
    else:
        operation["security"] = []
    if request:
        operation["requestBody"] = request
    if params:
        operation["parameters"] = list(params)
    return operation


def path_id(name):
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}


def query(name, schema, required=False):
    return {"name": name, "in": "query", "required": required, "schema": schema}


# status: awaiting_payment while a card hold is unpaid, confirmed when every booking is, partly_cancelled or
# cancelled after cancellations.
ORDER = {"type": "object", "properties": {
    "id": INT, "status": {"type": "string", "enum": ["awaiting_payment", "confirmed", "partly_cancelled", "cancelled"]},
    "total_ore": INT, "delegation_id": INT, "created_at": DATETIME,
    "bookings": {"type": "array", "items": OBJ}}}


ROUND = {"type": "object", "properties": {
    "year": INT, "requests_open_at": DATETIME, "allocation_at": DATETIME, "bookings_open_at": DATETIME,
    "status": {"type": "string", "enum": ["scheduled", "open", "closed", "drawn"]},
    "seed_commitment": _str(pattern="^[0-9a-f]{64}$"), "seed": {"type": ["string", "null"]},
    "requests": INT, "drawn_at": {"type": ["string", "null"], "format": "date-time"}}}
DRAW_RESULT = {"type": "object", "properties": {
    "year": INT, "seed": _str(pattern="^[0-9a-f]{64}$"), "seed_commitment": _str(pattern="^[0-9a-f]{64}$"),
    "draw": {"type": "array", "items": {"type": "object", "properties": {
        "ref": _str(), "rank": INT, "allocated": BOOL, "beds": INT}}}}}
ALLOCATION_REQUEST = {"type": "object", "properties": {
    "id": INT, "ref": _str(pattern="^[A-Za-z0-9_-]{16,}$"),
    "status": {"type": "string", "enum": ["submitted", "withdrawn", "allocated", "unallocated"]},
    "rank": {"type": ["integer", "null"]}, "order_id": {"type": ["integer", "null"]}}}


PATHS = {
    "/users": {"post": op("Register a host or coordinator", tag="accounts", auth=False, ok=201, errors=[409, 429],
                          request=body({"email": _str("email"), "password": _str(minLength=10), "name": _str(),
                                        "role": {"type": "string", "enum": ["host", "coordinator"]}},
                                       ["email", "password", "name", "role"]))},
    "/tokens": {"post": op("Get an API token", tag="accounts", auth=False, ok=201, errors=[401, 403, 429],
                           request=body({"email": _str(), "password": _str(), "otp": _str(pattern="^[0-9]{6}$")},
                                        ["email", "password"]))},
    "/me": {"get": op("The signed-in user", tag="accounts"),
            "patch": op("Set the coordinator's phone (null clears it)", tag="accounts",
                        request=body({"phone": {"type": ["string", "null"], "maxLength": 40}}, ["phone"]))},
    "/host/profile": {
        "put": op("Submit vetting details", tag="hosts", request=body(
            {"legal_name": _str(), "phone": _str(), "address": _str(), "postal_code": _str(), "right_to_rent": BOOL,
             "organisation_number": _str(), "vat_number": _str(), "vat_rate_pct": INT},
            ["legal_name", "phone", "address", "postal_code", "right_to_rent"]), errors=[409]),
        "get": op("The host's own vetting details", tag="hosts"),
    },
    "/admin/hosts": {"get": op("Vetting queue", tag="admin", params=[query(
        "status", {"type": "string", "enum": ["pending", "approved", "rejected", "suspended"]})])},
    "/admin/hosts/{user_id}/decision": {"post": op(
        "Approve, reject, suspend or reinstate a host", tag="admin", params=[path_id("user_id")], errors=[409],
        request=body({"decision": {"type": "string", "enum": ["approve", "reject", "suspend", "reinstate"]},
                      "reason": _str()}, ["decision"]))},
    "/admin/seasons": {"post": op("Create a season", tag="seasons", ok=201, errors=[409],
                                  request=body(SEASON_FIELDS, [k for k in SEASON_FIELDS
                                                               if k not in OPTIONAL_SEASON_FIELDS]))},
    "/admin/seasons/{year}": {"patch": op("Change a season", tag="seasons", params=[path_id("year")],
                                          request=body({k: v for k, v in SEASON_FIELDS.items() if k != "year"}))},
    "/seasons": {"get": op("Every season", tag="seasons", auth=False)},
    "/listings": {"post": op("Create a listing", tag="listings", ok=201, request=body(
        {"title": _str(), "description": _str(), "address": _str(), "postal_code": _str(),
         "walking_minutes": {"type": "integer", "minimum": 0, "maximum": 600}},
        ["title", "address", "postal_code", "walking_minutes"]))},
    "/host/listings": {"get": op("The host's own listings", tag="listings")},
    "/listings/{listing_id}": {
        "get": op("A published listing", tag="listings", auth=False, params=[path_id("listing_id"), query(
            "year", {"type": "integer"})]),
        "put": op("Edit a listing", tag="listings", params=[path_id("listing_id")], request=body(
            {"title": _str(), "description": _str(), "address": _str(), "postal_code": _str(),
             "walking_minutes": INT}, ["title", "address", "postal_code", "walking_minutes"])),
    },
    "/listings/{listing_id}/rooms": {"post": op("Add a room", tag="listings", ok=201, params=[path_id("listing_id")],
                                                request=body({"name": _str()}, ["name"]))},
    "/rooms/{room_id}/beds": {"post": op("Add a bed", tag="listings", ok=201, params=[path_id("room_id")],
                                         request=body({"label": _str(), "kind": {"type": "string", "enum": [
                                             "single", "double_half", "bunk", "sofa"]}}, ["label", "kind"]))},
    "/beds/{bed_id}/prices/{year}": {"put": op(
        "Set a bed's price for a season", tag="listings", params=[path_id("bed_id"), path_id("year")], errors=[409],
        request=body({"price_ore": {"type": "integer", "minimum": 1}}, ["price_ore"]))},
    "/listings/{listing_id}/publish": {"post": op(
        "Publish (a binding standing offer)", tag="listings", params=[path_id("listing_id")],
        request=body({"accept_terms_version": _str()}, ["accept_terms_version"]))},
    "/listings/{listing_id}/unpublish": {"post": op("Unpublish", tag="listings", params=[path_id("listing_id")])},
    "/beds/{bed_id}/blocks": {"post": op("Block own nights", tag="listings", ok=201, errors=[409],
                                         params=[path_id("bed_id")],
                                         request=body({"check_in": DATE, "check_out": DATE},
                                                      ["check_in", "check_out"]))},
    "/availability": {"get": op("Free beds for a stay", tag="availability", auth=False, params=[
        query("year", INT, True), query("check_in", DATE, True), query("check_out", DATE, True),
        query("beds", {"type": "integer", "minimum": 1}, True), query("max_walking_minutes", INT),
        query("max_price_ore", INT), query("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
        query("offset", {"type": "integer", "minimum": 0})])},
    "/availability/groups": {"get": op("Proposals of N beds over at most K listings", tag="availability",
                                       auth=False, params=[
        query("year", INT, True), query("check_in", DATE, True), query("check_out", DATE, True),
        query("beds", {"type": "integer", "minimum": 1}, True), query("max_walking_minutes", INT),
        query("max_price_ore", INT), query("max_listings", {"type": "integer", "minimum": 1, "maximum": 5})])},
    "/delegations": {
        "post": op("Register a delegation", tag="delegations", ok=201, request=body(
            {"name": _str(), "organisation_number": _str(), **INVOICE_DETAILS}, ["name", "organisation_number"])),
        "get": op("The coordinator's delegations", tag="delegations"),
    },
    "/delegations/{delegation_id}": {
        "get": op("A delegation", tag="delegations", params=[path_id("delegation_id")]),
        "patch": op("Change a delegation's invoice details", tag="delegations", params=[path_id("delegation_id")],
                    request=body(INVOICE_DETAILS))},
    "/bookings/{booking_id}/invoice.pdf": {"get": op(
        "A booking's invoice as PDF", tag="invoices", params=[path_id("booking_id")], ok_type="application/pdf",
        ok_schema={"type": "string"})},
    "/bookings/{booking_id}/invoice.xml": {"get": op(
        "A booking's invoice as Peppol BIS Billing 3.0 UBL", tag="invoices", params=[path_id("booking_id")],
        ok_type="application/xml", ok_schema={"type": "string"})},
    "/admin/invoices": {"get": op("The invoice ledger", tag="admin", params=[query(
        "status", {"type": "string", "enum": ["open", "paid", "credited", "overdue"]})])},
    "/admin/invoices/{number}/payments": {"post": op(
        "Record money received on an invoice", tag="admin", ok=201,
        params=[{"name": "number", "in": "path", "required": True, "schema": {"type": "string"}}],
        request=body({"amount_ore": INT, "paid_on": DATE}, ["amount_ore", "paid_on"]))},
    "/delegations/{delegation_id}/members": {"post": op(
        "Add a member", tag="delegations", ok=201, params=[path_id("delegation_id")],
        request=body({"name": _str(), "email": _str("email")}, ["name", "email"]))},
    "/rooms/{room_id}": {
        "patch": op("Rename a room", tag="listings", params=[path_id("room_id")],
                    request=body({"name": _str()}, ["name"])),
        "delete": op("Remove a room and its beds", tag="listings", errors=[409], params=[path_id("room_id")])},
    "/beds/{bed_id}": {
        "patch": op("Rename a bed", tag="listings", params=[path_id("bed_id")],
                    request=body({"label": _str(), "kind": _str()}, [])),
        "delete": op("Remove a bed", tag="listings", errors=[409], params=[path_id("bed_id")])},
    "/delegations/{delegation_id}/members/{member_id}": {
        "patch": op("Rename a member", tag="delegations", params=[path_id("delegation_id"), path_id("member_id")],
                    request=body({"name": _str(), "email": _str("email")}, [])),
        "delete": op("Remove a member who has no bed", tag="delegations", errors=[409],
                     params=[path_id("delegation_id"), path_id("member_id")])},
    "/delegations/{delegation_id}/unassigned": {"get": op(
        "Per night, the booked beds without a member and the members without a bed", tag="delegations",
        params=[path_id("delegation_id")])},
    "/delegations/{delegation_id}/rooming.csv": {"get": op(
        "Rooming list as CSV", tag="delegations", params=[path_id("delegation_id")], ok_type="text/csv",
        ok_schema={"type": "string"})},
    "/bookings": {
        "post": op("Book beds (all or nothing, binding contract)", tag="bookings", ok=201, errors=[409], params=[
            {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}}],
            request=body({"delegation_id": INT, "bed_ids": {"type": "array", "items": INT},
                          "check_in": DATE, "check_out": DATE, "accept_contract": BOOL,
                          "payment_method": {"type": "string", "enum": ["invoice", "card"]}},
                         ["delegation_id", "bed_ids", "check_in", "check_out", "payment_method"])),
        "get": op("Own bookings", tag="bookings"),
    },
    "/bookings/{booking_id}": {"get": op("A booking", tag="bookings", params=[path_id("booking_id")])},
    "/bookings/{booking_id}/cancel": {"post": op(
        "Cancel as guest under the contract's terms: the whole booking, or only the bed-nights in `lines` (recorded "
        "as an amendment beside the contract; the booking keeps its status while lines remain)", tag="bookings",
        errors=[409], params=[path_id("booking_id")],
        request={**body({"lines": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["bed_id", "night"], "properties": {"bed_id": INT, "night": DATE}}}}),
            "required": False},
        ok_schema={"type": "object", "properties": {
            "id": INT, "status": _str(), "refund_ore": INT, "invoice_credit_ore": INT,
            "cancelled_lines": {"type": "array", "items": {"type": "object", "properties": {
                "bed_id": INT, "night": DATE, "price_ore": INT}}},
            "amendment": {"type": ["object", "null"]}}})},
    "/bookings/{booking_id}/host-cancel": {"post": op(
        "Cancel as host (breach); comparable beds are held for the coordinator as a rehousing offer", tag="bookings",
        errors=[409], params=[path_id("booking_id")], request=body({"reason": _str()}),
        ok_schema={"type": "object", "properties": {
            "id": INT, "status": _str(), "refund_ore": INT,
            "rehousing": {"type": ["object", "null"], "properties": {
                "booking_id": INT, "booking_ids": {"type": "array", "items": INT}, "expires_at": _str()}}}})},
    "/bookings/{booking_id}/report": {"post": op(
        "Report bed-nights missing or not as described on arrival (check-in date to the end of the next day): "
        "refunded in full, a flag against the host, a rehousing offer for the nights not yet passed", tag="bookings",
        errors=[409], params=[path_id("booking_id")],
        request=body({"lines": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["bed_id", "night"], "properties": {"bed_id": INT, "night": DATE}}},
            "category": {"type": "string", "enum": ["missing", "not_as_described"]}, "description": _str()},
            ["lines", "category", "description"]))},
    "/bookings/{booking_id}/accept": {"post": op(
        "Accept a rehousing offer (its own contract naming the breached one, the breached booking's payment "
        "method)", tag="bookings", errors=[409], params=[path_id("booking_id")],
        request=body({"accept_contract": BOOL}, ["accept_contract"]))},
    "/bookings/{booking_id}/decline": {"post": op(
        "Decline a rehousing offer (its beds are released)", tag="bookings", errors=[409],
        params=[path_id("booking_id")])},
    "/bookings/{booking_id}/rooming": {"put": op(
        "Assign members to beds", tag="bookings", errors=[409], params=[path_id("booking_id")],
        request=body({"assignments": {"type": "array", "items": {"type": "object", "properties": {
            "bed_id": INT, "member_id": {"type": ["integer", "null"]}}}}}, ["assignments"]))},
    "/bookings/{booking_id}/payment": {"post": op(
        "Pay a card booking", tag="payments", ok=201, errors=[402, 409], params=[path_id("booking_id")],
        request=body({"payment_method_id": _str()}, ["payment_method_id"]))},
    "/orders": {"post": op(
        "Book several listings in one step (one booking and contract per part, all or none)", tag="orders", ok=201,
        errors=[409], params=[{"name": "Idempotency-Key", "in": "header", "required": False,
                               "schema": {"type": "string"}}],
        request=body({"delegation_id": INT, "check_in": DATE, "check_out": DATE, "accept_contract": BOOL,
                      "parts": {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {
                          "bed_ids": {"type": "array", "items": INT}}, "required": ["bed_ids"]}},
                      "payment_method": {"type": "string", "enum": ["invoice", "card"]}},
                     ["delegation_id", "parts", "check_in", "check_out", "payment_method"]),
        ok_schema=ORDER)},
    "/orders/{order_id}": {"get": op("An order with its bookings", tag="orders", params=[path_id("order_id")],
                                     ok_schema=ORDER)},
    "/orders/{order_id}/payment": {"post": op(
        "Pay every card booking of an order with one PaymentMethod (one PaymentIntent per booking; a refund of one "
        "booking refunds its own payment)", tag="orders", ok=201, errors=[402, 409], params=[path_id("order_id")],
        request=body({"payment_method_id": _str()}, ["payment_method_id"]),
        ok_schema={"type": "object", "properties": {
            "payments": {"type": "array", "items": {"type": "object", "properties": {
                "booking_id": INT, "payment_intent_id": _str(), "status": _str(), "client_secret": _str(),
                "amount_ore": INT}}},
            "status": {"type": "string", "enum": ["succeeded", "requires_action"]}}})},
    "/contracts/verify": {"get": op("Verify a contract", tag="contracts", auth=False, params=[
        query("number", _str()), query("sha256", _str())])},
    "/contracts/{contract_id}": {"get": op("A contract", tag="contracts", params=[path_id("contract_id")])},
    "/contracts/{contract_id}/pdf": {"get": op("A contract as PDF", tag="contracts", params=[path_id("contract_id")],
                                               ok_type="application/pdf", ok_schema={"type": "string"})},
    "/flags": {"post": op("Flag a host", tag="flags", ok=201, request=body(
        {"host_id": INT, "booking_id": INT, "category": {"type": "string", "enum": [
            "overcharging", "double_selling", "cancellation", "misrepresentation", "other"]},
         "description": _str()}, ["host_id", "category", "description"]))},
    "/admin/flags": {"get": op("Flags", tag="admin", params=[query(
        "status", {"type": "string", "enum": ["open", "upheld", "dismissed"]})])},
    "/admin/flags/{flag_id}/resolve": {"post": op(
        "Uphold or dismiss a flag", tag="admin", errors=[409], params=[path_id("flag_id")],
        request=body({"decision": {"type": "string", "enum": ["upheld", "dismissed"]}, "note": _str()},
                     ["decision"]))},
    "/host/flags": {"get": op("Every flag about the acting host (response, decision, statement of reasons)",
                              tag="flags")},
    "/host/flags/{flag_id}/response": {"post": op(
        "Answer a flag within 7 days", tag="flags", errors=[409], params=[path_id("flag_id")],
        request=body({"text": _str()}, ["text"]))},
    "/host/flags/{flag_id}/appeal": {"post": op(
        "Appeal the decision on a flag (once)", tag="flags", ok=201, errors=[409], params=[path_id("flag_id")],
        request=body({"text": _str()}, ["text"]))},
    "/admin/flags/{flag_id}/appeal-decision": {"post": op(
        "Decide an appeal (another admin than the deciding one)", tag="admin", errors=[409],
        params=[path_id("flag_id")],
        request=body({"decision": {"type": "string", "enum": ["upheld", "overturned"]}, "note": _str()},
                     ["decision", "note"]))},
    "/waitlist": {
        "post": op("Wait for beds for a stay", tag="waitlist", ok=201, errors=[409], request=body(
            {"delegation_id": INT, "year": INT, "check_in": DATE, "check_out": DATE,
             "beds": {"type": "integer", "minimum": 1, "maximum": 100},
             "max_walking_minutes": {"type": "integer", "minimum": 0, "maximum": 600},
             "max_price_ore": {"type": "integer", "minimum": 1}},
            ["delegation_id", "year", "check_in", "check_out", "beds"])),
        "get": op("The coordinator's waiting-list entries and offers", tag="waitlist"),
    },
    "/waitlist/{entry_id}/accept": {"post": op(
        "Accept a reserved offer (binding contract, invoice)", tag="waitlist", errors=[409],
        params=[path_id("entry_id")], request=body({"accept_contract": BOOL}, ["accept_contract"]))},
    "/waitlist/{entry_id}/cancel": {"post": op("Leave the waiting list (declines an offer)", tag="waitlist",
                                               errors=[409], params=[path_id("entry_id")])},
    "/allocation/{year}": {"get": op(
        "A season's allocation round: times, status, the seed's SHA-256 commitment, the number of requests; the seed "
        "once drawn", tag="allocation", auth=False, params=[path_id("year")], ok_schema=ROUND)},
    "/allocation/{year}/result": {"get": op(
        "The whole draw, once done: the seed, its commitment, every request's ref, rank, outcome and beds, in rank "
        "order", tag="allocation", auth=False, errors=[409], params=[path_id("year")], ok_schema=DRAW_RESULT)},
    "/allocation/{year}/requests": {
        "post": op("Make the organisation's one request in the round (the contract accepted in advance)",
                   tag="allocation", ok=201, errors=[409], params=[path_id("year")], ok_schema=ALLOCATION_REQUEST,
                   request=body({
                       "delegation_id": INT, "check_in": DATE, "check_out": DATE,
                       "beds": {"type": "integer", "minimum": 1, "maximum": 100},
                       "max_walking_minutes": {"type": "integer", "minimum": 0, "maximum": 600},
                       "max_price_ore": {"type": "integer", "minimum": 1},
                       "max_listings": {"type": "integer", "minimum": 1, "maximum": 5, "default": 3},
                       "preferred_listing_ids": {"type": "array", "items": INT, "maxItems": 5},
                       "payment_method": {"type": "string", "enum": ["invoice", "card"]},
                       "accept_contract": BOOL},
                       ["delegation_id", "check_in", "check_out", "beds", "payment_method", "accept_contract"])),
        "get": op("The coordinator's requests in the round", tag="allocation", params=[path_id("year")]),
    },
    "/allocation/{year}/requests/{request_id}": {
        "get": op("A request: ref, status, rank, order", tag="allocation", ok_schema=ALLOCATION_REQUEST,
                  params=[path_id("year"), path_id("request_id")]),
        "delete": op("Withdraw a request before the draw", tag="allocation", errors=[409],
                     ok_schema=ALLOCATION_REQUEST, params=[path_id("year"), path_id("request_id")]),
    },
    "/transparency": {"get": op("The season's public figures", tag="public", auth=False,
                                params=[query("year", INT)])},
}


def document(server_url: str = "/api/v1") -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Sängplats API", "version": "1.0.0",
                 "description": "Bed places for Almedalen week in Visby. Money in öre; dates YYYY-MM-DD. "
                                "Messages (`title`, `detail`, `errors`) are Swedish unless the client asks for "
                                "English with `Accept-Language: en` or `?lang=en`, or the token's user chose "
                                "English; `code` and the other fields never depend on the language."},
        "servers": [{"url": server_url}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Problem": {"type": "object", "required": ["type", "title", "status", "detail", "code"],
                                    "properties": {"type": _str(), "title": _str(), "status": INT,
                                                   "detail": _str(), "code": _str()}}},
        },
    }


@api.get("/openapi.json")
def openapi_json():
    """The OpenAPI 3 description of this API."""
    return document()
