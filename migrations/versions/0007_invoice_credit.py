"""bookings.invoice_credited_ore: a guest cancellation of an unpaid invoice refunds nothing and credits
the invoice by the contract terms' share instead (issue 9).

Revision ID: 0007_invoice_credit
Revises: 0006_accounts_integrity
Create Date: 2026-12-02 00:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0007_invoice_credit"
down_revision = "0006_accounts_integrity"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN on both databases (no batch rebuild, so no trigger on bookings is lost).
    op.add_column("bookings", sa.Column("invoice_credited_ore", sa.Integer(), server_default=sa.text("0"),
                                        nullable=False))


def downgrade():
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_column("invoice_credited_ore")
