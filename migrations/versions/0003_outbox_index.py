"""Index the outbox by recipient: the once-per-contract confirmation check looks it up in the booking's write
transaction, and the outbox only grows.

Revision ID: 0003_outbox_index
Revises: 0002_payments
Create Date: 2026-11-27 07:00:00
"""
from alembic import op

revision = "0003_outbox_index"
down_revision = "0002_payments"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox_emails", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_emails_to_address"), ["to_address"], unique=False)


def downgrade():
    with op.batch_alter_table("outbox_emails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_emails_to_address"))
