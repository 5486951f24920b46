"""Public API: availability and transparency."""


from app.api import api
from app.api.common import query_date, query_int
from app.services import availability, transparency
from app.services.errors import ValidationFailed


@api.get("/availability")
def search_availability():
    """Listings with at least N beds free every night of a stay, cheapest first."""
    errors: dict = {}
    year = query_int("year", True, errors)
    check_in, check_out = query_date("check_in", errors), query_date("check_out", errors)
    beds = query_int("beds", True, errors)
    max_walking = query_int("max_walking_minutes", False, errors)
    max_price = query_int("max_price_ore", False, errors)
    if errors:
        raise ValidationFailed(errors)
    # A required parameter is None only after it recorded an error.
    assert year is not None and check_in is not None and check_out is not None and beds is not None  # nosec B101
    results = availability.search(year, check_in, check_out, beds, max_walking_minutes=max_walking,
                                  max_price_ore=max_price)
    return {"results": [
        {"listing_id": r.listing_id, "title": r.title, "walking_minutes": r.walking_minutes,
         "free_beds": [{"bed_id": b.bed_id, "label": b.label, "room": b.room_name, "kind": b.kind,
                        "price_ore": b.price_ore} for b in r.free_beds],
         "total_ore_for_n": r.total_ore_for_n}
        for r in results
    ]}


@api.get("/transparency")
def get_transparency():
    """The season's public figures."""
    errors: dict = {}
    year = query_int("year", False, errors)
    if errors:
        raise ValidationFailed(errors)
    return transparency.figures(year if year is not None else None)



