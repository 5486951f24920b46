"""members.itinerary_token and members.itinerary_digest (issue 12): each member's private itinerary link, and the
SHA-256 of the itinerary last e-mailed to them, so a change (and only a change) sends a new one.

Existing members get a token each here; their digest starts empty, so the next change of their beds tells them.

Revision ID: 0014_member_itinerary
Revises: 0013_booking_kind
Create Date: 2026-12-14 00:00:00
"""
import secrets

from alembic import op
import sqlalchemy as sa

revision = "0014_member_itinerary"
down_revision = "0013_booking_kind"
branch_labels = None
depends_on = None

members = sa.table("members", sa.column("id", sa.Integer), sa.column("itinerary_token", sa.String))


def _sqlite():
    return op.get_bind().dialect.name == "sqlite"


def upgrade():
    # No batch rebuild on SQLite: a copy-and-rename of members would trip bed_nights' foreign key to it
    # (PRAGMA foreign_keys=ON). A plain ADD COLUMN must carry a default to be NOT NULL; every row gets its own
    # token below, before the unique index is made.
    if _sqlite():
        op.execute("ALTER TABLE members ADD COLUMN itinerary_token VARCHAR(64) DEFAULT '' NOT NULL")
    else:
        op.add_column("members", sa.Column("itinerary_token", sa.String(length=64), nullable=True))
    op.add_column("members", sa.Column("itinerary_digest", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    for (member_id,) in bind.execute(sa.select(members.c.id)).all():
        bind.execute(members.update().where(members.c.id == member_id)
                     .values(itinerary_token=secrets.token_urlsafe(32)))
    if not _sqlite():
        op.alter_column("members", "itinerary_token", existing_type=sa.String(length=64), nullable=False)
    op.create_index(op.f("ix_members_itinerary_token"), "members", ["itinerary_token"], unique=True)


def downgrade():
    op.drop_index(op.f("ix_members_itinerary_token"), table_name="members")
    if _sqlite():
        op.execute("ALTER TABLE members DROP COLUMN itinerary_digest")
        op.execute("ALTER TABLE members DROP COLUMN itinerary_token")
    else:
        op.drop_column("members", "itinerary_digest")
        op.drop_column("members", "itinerary_token")
