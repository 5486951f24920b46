"""beds.removed_at and rooms.removed_at: a bed or room with history is removed softly (its bed-nights,
contracts and prices stay); users.phone: a coordinator's phone for the host of a confirmed booking
(issue 10).

Revision ID: 0009_removal_and_phone
Revises: 0008_organisation_limits
Create Date: 2026-12-03 00:00:00
"""
from alembic import op
import sqlalchemy as sa

from app.models.types import UTCDateTime

revision = "0009_removal_and_phone"
down_revision = "0008_organisation_limits"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMNs on both databases (no batch rebuild, so no trigger is lost).
    op.add_column("beds", sa.Column("removed_at", UTCDateTime(timezone=True), nullable=True))
    op.add_column("rooms", sa.Column("removed_at", UTCDateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("phone", sa.String(length=40), nullable=True))


def downgrade():
    for table, column in (("users", "phone"), ("rooms", "removed_at"), ("beds", "removed_at")):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(column)
