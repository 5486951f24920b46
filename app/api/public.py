"""Public API: availability and transparency."""


from app.api import api
from app.api.common import query_date, query_int
from app.services import availability, proposals, transparency
from app.services.errors import ValidationFailed

PAGE_DEFAULT = 50  # listings per page of GET /availability unless `limit` says otherwise


def _search_args(errors: dict) -> tuple:
    """The stay and limits every availability query takes, shape-checked into `errors`."""
    year = query_int("year", True, errors)
    check_in, check_out = query_date("check_in", errors), query_date("check_out", errors)
    beds = query_int("beds", True, errors)
    return (year, check_in, check_out, beds, query_int("max_walking_minutes", False, errors),
            query_int("max_price_ore", False, errors))


@api.get("/availability")
def search_availability():
    """One page of the listings with at least N beds free every night of a stay, cheapest first."""
    errors: dict = {}
    year, check_in, check_out, beds, max_walking, max_price = _search_args(errors)
    limit, offset = query_int("limit", False, errors), query_int("offset", False, errors)
    if errors:
        raise ValidationFailed(errors)
    # A required parameter is None only after it recorded an error.
    assert year is not None and check_in is not None and check_out is not None and beds is not None  # nosec B101
    limit = PAGE_DEFAULT if limit is None else limit
    offset = offset or 0
    page = availability.search_page(year, check_in, check_out, beds, limit=limit, offset=offset,
                                    max_walking_minutes=max_walking, max_price_ore=max_price)
    following = offset + len(page.results)
    return {"results": [
        {"listing_id": r.listing_id, "title": r.title, "walking_minutes": r.walking_minutes,
         "free_beds": [{"bed_id": b.bed_id, "label": b.label, "room": b.room_name, "kind": b.kind,
                        "price_ore": b.price_ore} for b in r.free_beds],
         "total_ore_for_n": r.total_ore_for_n}
        for r in page.results
    ], "total": page.total, "next_offset": following if following < page.total else None}


@api.get("/availability/groups")
def group_proposals():
    """Up to five ways to house N people across at most K listings, fewest listings first."""
    errors: dict = {}
    year, check_in, check_out, beds, max_walking, max_price = _search_args(errors)
    max_listings = query_int("max_listings", False, errors)
    if errors:
        raise ValidationFailed(errors)
    found = proposals.propose(year, check_in, check_out, beds, max_walking_minutes=max_walking,
                              max_price_ore=max_price,
                              max_listings=proposals.DEFAULT_LISTINGS if max_listings is None else max_listings)
    return {"proposals": [
        {"parts": [{"listing_id": part.listing_id, "title": part.title, "walking_minutes": part.walking_minutes,
                    "bed_ids": part.bed_ids, "total_ore": part.total_ore} for part in proposal.parts],
         "listings": len(proposal.parts), "total_ore": proposal.total_ore,
         "max_walking_minutes": proposal.max_walking_minutes}
        for proposal in found
    ]}


@api.get("/transparency")
def get_transparency():
    """The season's public figures."""
    errors: dict = {}
    year = query_int("year", False, errors)
    if errors:
        raise ValidationFailed(errors)
    return transparency.figures(year if year is not None else None)



