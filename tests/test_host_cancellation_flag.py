"""A host's cancellation raises its system flag through the flags service, with the flag.created audit entry."""
from __future__ import annotations

import json
from datetime import date

from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, Flag
from app.services import booking as booking_service
from app.services import cancellations
from app.services.base import Actor
from tests.helpers import YEAR


def test_the_system_flag_of_a_host_cancellation_is_audited_like_any_flag(make_listing, make_user, make_delegation):
    listing = make_listing(beds=1)
    coordinator = make_user("coordinator")
    delegation = make_delegation(coordinator)
    booking = booking_service.create_booking(
        Actor(coordinator.id, "coordinator"), delegation_id=delegation.id, bed_ids=[listing.beds()[0].id],
        check_in=date(YEAR, 6, 21), check_out=date(YEAR, 6, 23), accept_contract=True, payment_method="invoice")
    cancellations.cancel_by_host(Actor(listing.host_id, "host"), booking.id, "Dubbelbokat")

    flag = db.session.scalars(select(Flag).where(Flag.booking_id == booking.id)).one()
    assert (flag.source, flag.category, flag.status, flag.strike_given) == ("system", "cancellation", "open", True)
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "flag.created",
                                                          AuditEntry.object_id == str(flag.id))).all()
    assert len(entries) == 1
    assert json.loads(entries[0].after) == {"host_id": listing.host_id, "category": "cancellation",
                                            "booking_id": booking.id, "source": "system"}
