"""Access: the "yours or 404" lookups and the booking row lock every service takes the same way.

A row someone may not see answers 404 as if it did not exist (never 403, which would confirm it).
"""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from app.extensions import db
from app.models import Booking, Delegation
from app.services.base import Actor
from app.services.errors import NotFound


def owned_delegation(actor: Actor, delegation_id: int) -> Delegation:
    """A delegation of the acting coordinator (or any, for an admin); anyone else gets 404."""
    delegation = db.session.get(Delegation, delegation_id)
    if delegation is None or (delegation.coordinator_id != actor.user_id and not actor.is_admin):
        raise NotFound(_("Delegationen finns inte."))
    return delegation


def visible_booking(actor: Actor, booking_id: int) -> Booking:
    """A booking its coordinator, its host or an admin may see; anyone else gets 404."""
    booking = db.session.get(Booking, booking_id)
    if booking is None or not (
        actor.is_admin or booking.coordinator_id == actor.user_id or booking.host_id == actor.user_id
    ):
        raise NotFound(_("Bokningen finns inte."))
    return booking


def own_booking(actor: Actor, booking_id: int) -> Booking:
    """A booking of the acting coordinator; anyone else (its host and admins included) gets 404."""
    booking = visible_booking(actor, booking_id)
    if booking.coordinator_id != actor.user_id:
        raise NotFound(_("Bokningen finns inte."))
    return booking


def locked_booking(booking_id: int) -> Booking:
    """The booking row, re-read and locked for this unit of work (PostgreSQL; SQLite is already serialised)."""
    return db.session.scalars(select(Booking).where(Booking.id == booking_id).with_for_update()
                              .execution_options(populate_existing=True)).one()
