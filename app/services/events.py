"""Domain events, emitted inside a service's unit of work.

Services never call one another's listeners: a service that has news emits it here, and the
e-mail outbox (notifications) and the waiting list subscribe. Handlers only add rows to the same
session: they commit with the change that caused them or not at all, so nothing is lost and
nothing is half-written. They never call the network and never commit.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

_handlers: dict[str, list[Callable[..., None]]] = defaultdict(list)

BOOKING_CREATED = "booking.created"
BOOKING_CONFIRMED = "booking.confirmed"
BOOKING_CANCELLED_BY_GUEST = "booking.cancelled_by_guest"  # payload: booking, now, refund_ore, credit_ore
# some bed-nights freed, the booking stands; payload: booking, amendment, member_ids (who lost bed-nights), now
BOOKING_LINES_CANCELLED = "booking.lines_cancelled"
BOOKING_CANCELLED_BY_HOST = "booking.cancelled_by_host"
BOOKING_EXPIRED = "booking.expired"
HOST_DECIDED = "host.decided"
HOST_SUSPENDED = "host.suspended"  # by an admin or by strikes; the coordinators of its live contracts hear
FLAG_RESOLVED = "flag.resolved"
FLAG_CREATED = "flag.created"  # payload: flag, now (the host is told: a fair hearing)
FLAG_APPEAL_DECIDED = "flag.appeal_decided"  # payload: flag, appeal, now
# a host broke a contract and comparable beds are held for its coordinator; payload: breached, booking_ids,
# expires_at, now
REHOUSING_OFFERED = "booking.rehousing_offered"
WAITLIST_OFFERED = "waitlist.offered"  # payload: entry, booking, now
REFUND_QUEUED = "refund.queued"  # payload: booking, reason (a Swedish msgid), amount_ore, now
# A member's itinerary differs from the one they were last sent; payload: itinerary (as it is now, maybe without
# stays), first (nothing was sent before), now
ITINERARY_CHANGED = "member.itinerary_changed"
# The draw decided an allocation request; payload: request, order (allocated) or None, entry (its waiting-list
# entry when unallocated) or None, place (that entry's place in the queue) or None, now
ALLOCATION_DECIDED = "allocation.decided"


def subscribe(name: str, handler: Callable[..., None]) -> None:
    if handler not in _handlers[name]:
        _handlers[name].append(handler)


def emit(name: str, **payload: Any) -> None:
    for handler in list(_handlers[name]):
        handler(**payload)
