"""iCalendar feeds for delegations and hosts (secret URLs), checked by parsing them with `icalendar`."""
from datetime import date, datetime

import pytest

from app.extensions import db
from app.models import HostProfile
from app.services import cancellations
from app.services.base import Actor
from tests.helpers import YEAR, parse_calendar


@pytest.fixture
def bookings(make_listing, make_user, make_delegation, make_booking):
    listing = make_listing(beds=4)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    actor = Actor(coordinator.id, "coordinator")
    beds = [b.id for b in listing.beds()]

    def book(bed_ids, check_in, check_out, method="invoice"):
        return make_booking(delegation=delegation, bed_ids=bed_ids, check_in=check_in, check_out=check_out,
                            payment_method=method)

    live = [book(beds[:2], date(YEAR, 6, 20), date(YEAR, 6, 23)), book(beds[2:3], date(YEAR, 6, 22),
                                                                        date(YEAR, 6, 26), "card")]
    cancelled = book(beds[3:], date(YEAR, 6, 21), date(YEAR, 6, 22))
    cancellations.cancel_by_guest(actor, cancelled.id)
    return {"listing": listing, "coordinator": coordinator, "delegation": delegation, "live": live,
            "host": db.session.get(HostProfile, listing.host_id).user}


def check_feed(cal, bookings):
    assert cal.name == "VCALENDAR" and str(cal["VERSION"]) == "2.0" and str(cal["PRODID"])
    events = cal.walk("VEVENT")
    assert len(events) == len(bookings)
    by_uid = {str(e["UID"]): e for e in events}
    assert len(by_uid) == len(events)
    for booking in bookings:
        event = by_uid[f"booking-{booking.id}@sangplats.se"]
        start, end = event["DTSTART"].dt, event["DTEND"].dt
        assert type(start) is date and type(end) is date  # all-day: dates, not date-times
        assert (start, end) == (booking.check_in, booking.check_out)
        assert isinstance(event["DTSTAMP"].dt, datetime) and str(event["SUMMARY"])
    return by_uid


def test_delegation_feed(bookings, client, api_as):
    url = api_as(bookings["coordinator"]).get(f"/delegations/{bookings['delegation'].id}").get_json()["calendar_url"]
    by_uid = check_feed(parse_calendar(client, url), bookings["live"])
    confirmed, hold = bookings["live"]
    assert str(by_uid[f"booking-{confirmed.id}@sangplats.se"]["STATUS"]) == "CONFIRMED"
    assert str(by_uid[f"booking-{hold.id}@sangplats.se"]["STATUS"]) == "TENTATIVE"


def test_host_feed(bookings, client, api_as):
    me = api_as(bookings["host"]).get("/me").get_json()
    cal = parse_calendar(client, me["host"]["calendar_url"])
    by_uid = check_feed(cal, bookings["live"])
    assert bookings["delegation"].name in str(next(iter(by_uid.values()))["SUMMARY"])


@pytest.mark.parametrize("path", ["/calendar/delegation/{}.ics", "/calendar/host/{}.ics"])
def test_unknown_token_is_404(bookings, client, path):
    assert client.get(path.format("not-a-real-token")).status_code == 404
