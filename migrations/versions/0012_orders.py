"""orders: several bookings, one per listing, formed together in one transaction (issue 12, API.md
"Orders: one step, several hosts"); bookings.order_id links a booking to its order (null for a booking
made on its own).

Revision ID: 0012_orders
Revises: 0010_price_offered_at
Create Date: 2026-12-10 00:00:00
"""
from alembic import op
import sqlalchemy as sa

from app.models.types import UTCDateTime

revision = "0012_orders"
down_revision = "0010_price_offered_at"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delegation_id", sa.Integer(), nullable=False),
        sa.Column("coordinator_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("total_ore", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('awaiting_payment', 'confirmed')", name=op.f("ck_orders_status")),
        sa.CheckConstraint("total_ore >= 0", name=op.f("ck_orders_total_not_negative")),
        sa.ForeignKeyConstraint(["coordinator_id"], ["users.id"], name=op.f("fk_orders_coordinator_id_users")),
        sa.ForeignKeyConstraint(["delegation_id"], ["delegations.id"],
                                name=op.f("fk_orders_delegation_id_delegations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
    )
    op.create_index(op.f("ix_orders_coordinator_id"), "orders", ["coordinator_id"], unique=False)
    op.create_index(op.f("ix_orders_delegation_id"), "orders", ["delegation_id"], unique=False)
    # A plain ADD COLUMN ... REFERENCES on both databases (no batch rebuild, so no trigger is lost; SQLite
    # takes the foreign key only inline, which Alembic's add_column cannot emit there).
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE bookings ADD COLUMN order_id INTEGER "
                   "CONSTRAINT fk_bookings_order_id_orders REFERENCES orders (id)")
    else:
        op.add_column("bookings", sa.Column("order_id", sa.Integer(), nullable=True))
        op.create_foreign_key(op.f("fk_bookings_order_id_orders"), "bookings", "orders", ["order_id"], ["id"])
    op.create_index(op.f("ix_bookings_order_id"), "bookings", ["order_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_bookings_order_id"), table_name="bookings")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_column("order_id")
    op.drop_index(op.f("ix_orders_delegation_id"), table_name="orders")
    op.drop_index(op.f("ix_orders_coordinator_id"), table_name="orders")
    op.drop_table("orders")
