"""CSV exports: the same bytes whichever door (API token or HTML session) asks for them."""
from __future__ import annotations

import csv
import io

from app.services import rooming

ROOMING_HEADER = ["night", "listing", "room", "bed", "member", "booking_id"]


def rooming_csv(delegation_id: int) -> bytes:
    """The delegation's rooming list: UTF-8 with BOM, semicolons, a header, one row per booked bed-night."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(ROOMING_HEADER)
    for row in rooming.rooming_rows(delegation_id):
        writer.writerow([row.night.isoformat(), row.listing, row.room, row.bed, row.member or "", row.booking_id])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
