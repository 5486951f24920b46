"""GET /delegations/{id}/unassigned (issue 12, API.md "Changing a booking"): per night, the booked beds
without a member and the members without a bed."""
from __future__ import annotations

from datetime import date

from app.services import cancellations, rooming
from app.services.base import Actor
from tests.helpers import YEAR


def test_unassigned_lists_per_night_the_empty_beds_and_the_members_without_one(
        api_as, make_user, make_listing, make_delegation, make_booking):
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator, members=3)
    actor = Actor(coordinator.id, "coordinator")
    listing = make_listing(beds=3)
    beds = [b.id for b in listing.beds()]
    members = [m.id for m in delegation.members]
    # Two beds for the nights of 21 and 22 June, one more for the 22nd only, and a cancelled booking that
    # must not count.
    both = make_booking(delegation=delegation, bed_ids=beds[:2], check_in=date(YEAR, 6, 21),
                        check_out=date(YEAR, 6, 23))
    second = make_booking(delegation=delegation, bed_ids=beds[2:], check_in=date(YEAR, 6, 22),
                          check_out=date(YEAR, 6, 23))
    gone = make_booking(delegation=delegation, bed_ids=[b.id for b in make_listing(beds=1).beds()],
                        check_in=date(YEAR, 6, 20), check_out=date(YEAR, 6, 21))
    cancellations.cancel_by_guest(actor, gone.id)
    rooming.assign_rooming(actor, both.id, [{"bed_id": beds[0], "member_id": members[0]},
                                            {"bed_id": beds[1], "member_id": members[1]}])
    rooming.assign_rooming(actor, second.id, [{"bed_id": beds[2], "member_id": members[2]}])

    # Every booked bed has its member; on the 21st only two beds are booked, so the third member has none.
    api = api_as(coordinator)
    response = api.get(f"/delegations/{delegation.id}/unassigned")
    assert response.status_code == 200
    assert response.get_json() == {"nights": [
        {"night": f"{YEAR}-06-21", "beds": [], "members": [{"id": members[2], "name": "Medlem 3"}]}]}

    # Emptying one bed of the two-night booking leaves that bed and its member unassigned on both nights.
    rooming.assign_rooming(actor, both.id, [{"bed_id": beds[1], "member_id": None}])
    answer = api.get(f"/delegations/{delegation.id}/unassigned").get_json()
    second_member = {"id": members[1], "name": "Medlem 2"}
    assert answer == {"nights": [
        {"night": f"{YEAR}-06-21", "beds": [{"booking_id": both.id, "bed_id": beds[1]}],
         "members": [second_member, {"id": members[2], "name": "Medlem 3"}]},
        {"night": f"{YEAR}-06-22", "beds": [{"booking_id": both.id, "bed_id": beds[1]}],
         "members": [second_member]},
    ]}


def test_unassigned_is_the_coordinators_own(api_as, make_user, make_delegation):
    delegation = make_delegation()
    assert api_as(make_user("coordinator")).get(f"/delegations/{delegation.id}/unassigned").status_code == 404
    assert api_as(make_user("host")).get(f"/delegations/{delegation.id}/unassigned").status_code == 403
