"""The worker (issue 14): worker_heartbeats, one row per running `flask worker`, renewed every tick, which
/healthz reads (`worker: "late"` after two minutes without one); outbox_emails.claimed_until, set while one
sender has a message, so that a second worker never sends a message another is still sending (a due retry of a
message in flight looked like a message to send).

Revision ID: 0016_worker
Revises: 0015_amendments
Create Date: 2026-12-13 00:00:00
"""
from alembic import op
import sqlalchemy as sa

from app.models.types import UTCDateTime

revision = "0016_worker"
down_revision = "0015_amendments"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "worker_heartbeats",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("beat_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worker_heartbeats")),
    )
    op.create_index(op.f("ix_worker_heartbeats_beat_at"), "worker_heartbeats", ["beat_at"], unique=False)
    # A plain ADD COLUMN on both databases (a nullable column needs no batch rebuild on SQLite).
    op.add_column("outbox_emails", sa.Column("claimed_until", UTCDateTime(timezone=True), nullable=True))


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE outbox_emails DROP COLUMN claimed_until")
    else:
        op.drop_column("outbox_emails", "claimed_until")
    op.drop_index(op.f("ix_worker_heartbeats_beat_at"), table_name="worker_heartbeats")
    op.drop_table("worker_heartbeats")
