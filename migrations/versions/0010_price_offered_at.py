"""bed_prices.offered_at: when a bed was (last seen) on offer after its season's booking opened. Once booking
opens, only such a bed's price is frozen (it may only fall); a bed never offered may still be priced up to the
caps (issue 10).

Existing rows are filled from the recorded facts: the listing was published (offer_acceptances) or
unpublished (audit log) at or after the season's opening. A listing published now needs no mark: the
flag itself says the bed is on offer.

Revision ID: 0010_price_offered_at
Revises: 0009_removal_and_phone
Create Date: 2026-12-03 00:00:00
"""
from alembic import op
import sqlalchemy as sa

import app.models.types

revision = "0010_price_offered_at"
down_revision = "0009_removal_and_phone"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN on both databases (no batch rebuild).
    op.add_column("bed_prices", sa.Column("offered_at", app.models.types.UTCDateTime(timezone=True), nullable=True))
    op.execute("""
        UPDATE bed_prices SET offered_at = (
            SELECT MAX(seen.at) FROM (
                SELECT oa.listing_id AS listing_id, oa.accepted_at AS at FROM offer_acceptances oa
                UNION ALL
                SELECT l.id, ae.at FROM audit_entries ae JOIN listings l ON ae.object_id = CAST(l.id AS VARCHAR(40))
                WHERE ae.object_type = 'listing' AND ae.action = 'listing.unpublished'
            ) seen
            JOIN rooms r ON r.listing_id = seen.listing_id
            JOIN beds b ON b.room_id = r.id
            JOIN seasons s ON s.id = bed_prices.season_id
            WHERE b.id = bed_prices.bed_id AND seen.at >= s.bookings_open_at
        )
        WHERE offered_at IS NULL
    """)


def downgrade():
    with op.batch_alter_table("bed_prices", schema=None) as batch_op:
        batch_op.drop_column("offered_at")
