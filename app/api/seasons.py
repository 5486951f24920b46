"""Seasons."""
from sqlalchemy import select

from app.api import api
from app.api.common import Body, current_actor, json_body, roles
from app.api.serializers import season_json
from app.extensions import db
from app.models import Season
from app.services import seasons


def _season_values(body: Body, required: bool) -> dict:
    """The body's shape only (types, ISO dates); every range is the seasons service's rule."""
    values = {
        "year": body.int("year", required) if required else None,
        "name": body.str("name", required, 120),
        "first_night": body.date("first_night", required),
        "last_night": body.date("last_night", required),
        "bookings_open_at": body.datetime("bookings_open_at", required),
        "price_cap_ore": body.int("price_cap_ore", required),
        "max_increase_pct": body.int("max_increase_pct", required),
        "strike_limit": body.int("strike_limit", required),
        "hold_minutes": body.int("hold_minutes", required),
        "free_cancellation_until": body.date("free_cancellation_until", required),
        "late_cancellation_refund_pct": body.int("late_cancellation_refund_pct", required),
        "terms_version": body.str("terms_version", False, 40),
        "terms_text": body.str("terms_text", False, 100_000),
        "max_beds_per_organisation": body.int("max_beds_per_organisation", False),
        "max_open_holds": body.int("max_open_holds", False),
        "requests_open_at": body.datetime("requests_open_at", False),
        "allocation_at": body.datetime("allocation_at", False),
        "allocation_payment_hours": body.int("allocation_payment_hours", False),
        "unpaid_invoice_cancel_days": body.int("unpaid_invoice_cancel_days", False),
    }
    body.done()
    # null is a value for the bed-night limit (20 x the season's nights); left out, it stays as it is.
    return {k: v for k, v in values.items()
            if v is not None or (k in seasons.NULLABLE_FIELDS and k in body.data)}


@api.post("/admin/seasons")
@roles("admin")
def create_season():
    """Create a season."""
    values = _season_values(Body(json_body()), required=True)
    return season_json(seasons.create_season(current_actor(), values)), 201


@api.patch("/admin/seasons/<int:year>")
@roles("admin")
def update_season(year):
    """Change a season's settings."""
    seasons.season_or_404(year)
    values = _season_values(Body(json_body()), required=False)
    return season_json(seasons.update_season(current_actor(), year, values))


@api.get("/seasons")
def list_seasons():
    """Every season with its caps and terms."""
    current = seasons.current_season()
    return {"seasons": [{**season_json(s), "current": current is not None and s.id == current.id}
                        for s in db.session.scalars(select(Season).order_by(Season.year))]}
