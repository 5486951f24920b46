"""Card payments for bookings (POST /bookings/{id}/payment)."""
