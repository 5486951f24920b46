"""amendments: a booking changed under its contract's terms (issue 12, API.md "Changing a booking"). The contract
never changes; each partial guest cancellation is appended here, numbered "<contract number>-A<n>" per contract.
Append-only like contracts: triggers refuse UPDATE and DELETE on both databases, and TRUNCATE on PostgreSQL
(the guards of 0001 and 0005, copied).

Revision ID: 0015_amendments
Revises: 0014_member_itinerary
Create Date: 2026-12-14 00:00:00
"""
from alembic import op
import sqlalchemy as sa

from app.models.types import UTCDateTime

revision = "0015_amendments"
down_revision = "0014_member_itinerary"
branch_labels = None
depends_on = None

TABLE = "amendments"


def _postgresql():
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=48), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("lines_ore", sa.Integer(), nullable=False),
        sa.Column("refund_ore", sa.Integer(), nullable=False),
        sa.Column("invoice_credit_ore", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("seq > 0", name=op.f("ck_amendments_seq_positive")),
        sa.CheckConstraint("kind IN ('guest_cancellation')", name=op.f("ck_amendments_kind")),
        sa.CheckConstraint("lines_ore > 0", name=op.f("ck_amendments_lines_positive")),
        sa.CheckConstraint("refund_ore >= 0 AND invoice_credit_ore >= 0",
                           name=op.f("ck_amendments_money_not_negative")),
        sa.CheckConstraint("refund_ore + invoice_credit_ore <= lines_ore",
                           name=op.f("ck_amendments_money_within_lines")),
        sa.ForeignKeyConstraint(["contract_id"], ["contracts.id"], name=op.f("fk_amendments_contract_id_contracts")),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], name=op.f("fk_amendments_booking_id_bookings")),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_amendments_actor_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_amendments")),
        sa.UniqueConstraint("number", name=op.f("uq_amendments_number")),
        sa.UniqueConstraint("contract_id", "seq", name="uq_amendments_contract_seq"),
    )
    op.create_index(op.f("ix_amendments_contract_id"), TABLE, ["contract_id"], unique=False)
    op.create_index(op.f("ix_amendments_booking_id"), TABLE, ["booking_id"], unique=False)
    # Append-only, as contracts are (0001: UPDATE and DELETE; 0005: TRUNCATE on PostgreSQL).
    if _postgresql():
        op.execute(f"""
            CREATE FUNCTION {TABLE}_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{TABLE} rows are immutable' USING ERRCODE = 'restrict_violation';
            END $$;
        """)
        op.execute(f"CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE OR DELETE ON {TABLE} "
                   f"FOR EACH ROW EXECUTE FUNCTION {TABLE}_immutable()")
        op.execute(f"""
            CREATE FUNCTION {TABLE}_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{TABLE} is append-only: TRUNCATE is refused' USING ERRCODE = 'restrict_violation';
            END $$;
        """)
        op.execute(f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_no_truncate()")
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {TABLE}_no_{event.lower()} BEFORE {event} ON {TABLE} "
                       f"BEGIN SELECT RAISE(ABORT, '{TABLE} rows are immutable'); END")


def downgrade():
    if _postgresql():
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}")
        op.execute(f"DROP FUNCTION IF EXISTS {TABLE}_no_truncate()")
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_update ON {TABLE}")
        op.execute(f"DROP FUNCTION IF EXISTS {TABLE}_immutable()")
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_{event}")
    op.drop_index(op.f("ix_amendments_booking_id"), table_name=TABLE)
    op.drop_index(op.f("ix_amendments_contract_id"), table_name=TABLE)
    op.drop_table(TABLE)
