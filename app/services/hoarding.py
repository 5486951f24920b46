"""Hoarding limits: how much one organisation number may hold at once in a season.

Every delegation registered with the same organisation number counts together, whoever registered
it. Two limits, both season settings: bed-nights held and booked at once (`max_beds_per_organisation`,
null meaning 20 x the season's nights; held card holds, booked nights and unaccepted waiting-list
offers count, `host_cancelled` locks do not) and unpaid card holds at once (`max_open_holds`; a hold
that lapsed unpaid keeps counting for `hold_minutes` after it lapsed, so letting holds lapse and taking
them again is no free renewal loop).

The check runs inside the caller's unit of work, after it locked every delegation of the organisation
number, so two bookings of one organisation racing each other are counted one after the other
(PostgreSQL: the row locks; SQLite: the write transaction's BEGIN IMMEDIATE).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import BindParameter, and_, bindparam, func, or_, select
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import BedNight, Booking, Delegation, Season
from app.services.errors import DomainError

LIMIT_CODE = "organisation_limit"
DEFAULT_BEDS_PER_NIGHT = 20  # max_beds_per_organisation null: 20 x the season's nights

# Lock every delegation of the organisation number (ordered, so two lockers never deadlock) and read the
# season's limits in the same statement. Only the delegations are locked, never the season row.
_given = aliased(Delegation)
_same_number = (select(_given.organisation_number).where(_given.id == bindparam("delegation_id"))
                .scalar_subquery())
_LOCK_ORGANISATION = (
    select(Delegation.id, Delegation.organisation_number, Season.max_beds_per_organisation, Season.first_night,
           Season.last_night, Season.max_open_holds, Season.hold_minutes)
    .join(Season, Season.id == bindparam("season_id"))
    .where(Delegation.organisation_number == _same_number)
    .order_by(Delegation.id)
    .with_for_update(of=Delegation)
)
_ids: BindParameter[list[int]] = bindparam("delegation_ids", expanding=True)
_HELD_BED_NIGHTS = (
    select(func.count(BedNight.id)).join(Booking, Booking.id == BedNight.booking_id)
    .where(Booking.delegation_id.in_(_ids), Booking.season_id == bindparam("season_id"),
           or_(BedNight.state == "booked",
               # A hold or offer past its time no longer holds anything, even before a job releases it.
               and_(BedNight.state == "held",
                    or_(Booking.expires_at.is_(None), Booking.expires_at > bindparam("now")))))
    .scalar_subquery()
)
_OPEN_HOLDS = (
    select(func.count(Booking.id))
    .where(Booking.delegation_id.in_(_ids), Booking.season_id == bindparam("season_id"),
           Booking.payment_method == "card", Booking.status.in_(("awaiting_payment", "expired")),
           Booking.expires_at > bindparam("lapsed_since"))
    .scalar_subquery()
)
_COUNT = select(_HELD_BED_NIGHTS, _OPEN_HOLDS)


def enforce_organisation_limits(delegation_id: int, season_id: int, *, bed_nights: int, card_hold: bool,
                                now: datetime) -> None:
    """Refuse (422 `organisation_limit`) what would take the delegation's organisation above a limit.

    Runs inside the caller's unit of work (reads and locks only): one locking statement, one count.
    """
    rows = db.session.execute(_LOCK_ORGANISATION, {"delegation_id": delegation_id, "season_id": season_id}).all()
    if not rows:  # no such delegation or season: the caller's own checks answer for it
        return
    ids = [row[0] for row in rows]
    number, max_beds, first_night, last_night, max_holds, hold_minutes = rows[0][1:]
    bed_limit = max_beds if max_beds is not None else DEFAULT_BEDS_PER_NIGHT * ((last_night - first_night).days + 1)
    held, holds = db.session.execute(_COUNT, {
        "delegation_ids": ids, "season_id": season_id, "now": now,
        "lapsed_since": now - timedelta(minutes=hold_minutes)}).one()
    if card_hold and holds + 1 > max_holds:
        raise DomainError(
            _("Organisationen %(number)s har redan %(held)s obetalda kortreservationer, och högst %(limit)s är "
              "tillåtna samtidigt. En reservation som gick ut obetald räknas i %(minutes)s minuter till. Betala "
              "eller avboka en reservation, välj faktura som betalsätt, eller försök igen senare.",
              number=number, held=holds, limit=max_holds, minutes=hold_minutes),
            code=LIMIT_CODE, kind="holds", limit=max_holds, held=holds)
    if held + bed_nights > bed_limit:
        raise DomainError(
            _("Organisationen %(number)s har redan %(held)s bokade eller reserverade bäddnätter den här säsongen, "
              "och högst %(limit)s är tillåtna samtidigt; den här bokningen skulle ge %(total)s. Boka färre "
              "bäddar eller nätter, eller avboka det ni inte behöver.",
              number=number, held=held, limit=bed_limit, total=held + bed_nights),
            code=LIMIT_CODE, kind="bed_nights", limit=bed_limit, held=held, requested=bed_nights)
