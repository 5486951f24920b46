"""JSON API v1 (shared/API.md): thin routes over app/services."""
from flask import Blueprint, g, request

from app.services.accounts import user_for_token

api = Blueprint("api", __name__, url_prefix="/api/v1")


@api.before_request
def load_token_user():
    """Resolve the bearer token, if any, to a user."""
    g.api_user = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        g.api_user = user_for_token(header[7:].strip())


from app.api import (  # noqa: E402,F401
    accounts,
    allocation,
    bookings,
    hosts,
    invoices,
    listings,
    openapi,
    orders,
    payments,
    public,
    seasons,
    waitlist,
)
