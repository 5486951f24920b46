"""Payments: a globally unique attempt key per payment, and webhook events that can fail and be retried.

Revision ID: 0002_payments
Revises: e6e267701ba8
"""
from uuid import uuid4

import sqlalchemy as sa
from alembic import op

import app.models.types

revision = "0002_payments"
down_revision = "e6e267701ba8"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempt_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("succeeded_at", app.models.types.UTCDateTime(timezone=True), nullable=True))
    payments = sa.table("payments", sa.column("id", sa.Integer), sa.column("attempt_key", sa.String))
    conn = op.get_bind()
    for (payment_id,) in conn.execute(sa.select(payments.c.id)).all():
        conn.execute(payments.update().where(payments.c.id == payment_id).values(attempt_key=uuid4().hex))
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.alter_column("attempt_key", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_payments_attempt_key"), ["attempt_key"])

    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=16), server_default=sa.text("'processed'"),
                                      nullable=False))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default=sa.text("1"), nullable=False))
        batch_op.add_column(sa.Column("error", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("processed_at", app.models.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(batch_op.f("ck_stripe_events_status"), "status IN ('processed', 'failed')")


def downgrade():
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_stripe_events_status"), type_="check")
        batch_op.drop_column("processed_at")
        batch_op.drop_column("error")
        batch_op.drop_column("attempts")
        batch_op.drop_column("status")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_payments_attempt_key"), type_="unique")
        batch_op.drop_column("succeeded_at")
        batch_op.drop_column("attempt_key")
