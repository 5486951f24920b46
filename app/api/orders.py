"""Orders: several listings' beds booked in one step (POST /orders), read, and paid with one card entry."""
from flask_babel import gettext as _

from app.api import api
from app.api.common import INT_MAX, INT_MIN, Body, answer_once, current_actor, json_body, roles
from app.api.serializers import booking_json
from app.services import orders
from app.services.access import owned_delegation


def order_json(order) -> dict:
    return {"id": order.id, "status": orders.order_status(order), "total_ore": order.total_ore,
            "delegation_id": order.delegation_id, "created_at": order.created_at.isoformat(),
            "bookings": [booking_json(booking) for booking in order.bookings]}


def _parts(body: Body):
    """`parts: [{bed_ids: [...]}]` as given, with 32-bit ids (the service checks the rest of the shape)."""
    value = body.data.get("parts")
    if value is None:
        body.errors.setdefault("parts", []).append(_("Obligatoriskt."))
        return None
    if isinstance(value, list):
        for part in value:
            ids = part.get("bed_ids") if isinstance(part, dict) else None
            if isinstance(ids, list) and any(isinstance(v, int) and not INT_MIN <= v <= INT_MAX for v in ids):
                body.errors.setdefault("parts", []).append(_("Måste vara ett heltal (32 bitar)."))
                return None
    return value


def _create_order(actor, values):
    order = orders.create_order(actor, **values)
    return 201, order_json(order)


@api.post("/orders")
@roles("coordinator")
def create_order():
    """Book several listings for one stay in one step: one booking and contract per listing, all or none."""
    actor = current_actor()
    body = Body(json_body())
    values = {"delegation_id": body.int("delegation_id"), "parts": _parts(body),
              "check_in": body.date("check_in"), "check_out": body.date("check_out"),
              "accept_contract": body.bool("accept_contract", required=False) or False,
              "payment_method": body.str("payment_method", max_length=10)}
    if body.errors and values["delegation_id"] is not None:
        owned_delegation(actor, values["delegation_id"])  # 404 before 422; else the service checks
    body.done()
    return answer_once(actor, values, lambda: _create_order(actor, values))


@api.get("/orders/<int:order_id>")
@roles("coordinator", "admin")
def get_order(order_id):
    """An order with its bookings (its coordinator, admin)."""
    return order_json(orders.visible_order(current_actor(), order_id))


@api.post("/orders/<int:order_id>/payment")
@roles("coordinator")
def pay_order(order_id):
    """Pay every card booking of the order with one PaymentMethod (one PaymentIntent per booking)."""
    actor = current_actor()
    orders.visible_order(actor, order_id)
    body = Body(json_body())
    payment_method_id = body.str("payment_method_id", max_length=255)
    body.done()
    results, status = orders.pay_order(actor, order_id, payment_method_id)
    return {"payments": [{"booking_id": booking_id, "payment_intent_id": result.payment_intent_id,
                          "status": result.status, "client_secret": result.client_secret,
                          "amount_ore": result.amount_ore} for booking_id, result in results],
            "status": status}, 201
