"""Card payments for bookings (POST /bookings/{id}/payment)."""
from app.api import api
from app.api.common import Body, current_actor, json_body, roles
from app.services import payments
from app.services.access import visible_booking


@api.post("/bookings/<int:booking_id>/payment")
@roles("coordinator")
def pay_booking(booking_id):
    """Pay a card booking with a Stripe PaymentMethod; finish 3-D Secure with Stripe.js when asked."""
    actor = current_actor()
    visible_booking(actor, booking_id)
    body = Body(json_body())
    payment_method_id = body.str("payment_method_id", max_length=255)
    body.done()
    result = payments.pay_booking(actor, booking_id, payment_method_id)
    return {"payment_intent_id": result.payment_intent_id, "status": result.status,
            "client_secret": result.client_secret, "amount_ore": result.amount_ore}, 201
