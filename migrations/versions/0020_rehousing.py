"""rehousing (issue 17, API.md "When a host breaks the contract"): a booking may be an `offered` rehousing offer
(beds held for a coordinator whose host broke the contract), `rehoused_from_id` names the breached booking, and
`host_deductions` records what the breaching host owes for each accepted offer (the new listing's price less the
offered price), once per offer (UNIQUE), append-only like contracts and amendments (the guards of 0015, copied);
`payouts.withheld_ore` is what of a payout is withheld for those deductions. An amendment may be an
`arrival_report` (bed-nights reported missing or not as described on arrival, refunded in full).
A fair hearing: a flag keeps the host's response, and `strike_suspended_from` (the host's status before the
suspension its strike caused, to restore it exactly if the decision is overturned); `flag_appeals` holds one appeal
per flag's decision (UNIQUE flag_id) and its outcome by another admin.

On SQLite the bookings status CHECK is widened in place (PRAGMA writable_schema, the documented way to change a
CHECK without rebuilding the table: a copy-and-rename of bookings would trip the foreign keys that point at it).

Revision ID: 0020_rehousing
Revises: 0019_invoices
Create Date: 2026-12-19 00:00:00
"""
from alembic import op
import sqlalchemy as sa

from app.models.types import UTCDateTime

revision = "0020_rehousing"
down_revision = "0019_invoices"
branch_labels = None
depends_on = None

TABLE = "host_deductions"
OLD_STATUS = ("status IN ('awaiting_payment', 'confirmed', 'cancelled_by_guest', 'cancelled_by_host', "
              "'expired', 'completed')")
NEW_STATUS = ("status IN ('awaiting_payment', 'confirmed', 'cancelled_by_guest', 'cancelled_by_host', "
              "'expired', 'completed', 'offered')")


def _postgresql():
    return op.get_bind().dialect.name == "postgresql"


OLD_KIND = "kind IN ('guest_cancellation')"
NEW_KIND = "kind IN ('guest_cancellation', 'arrival_report')"


def _sqlite_replace_check(old: str, new: str, table: str = "bookings") -> None:
    bind = op.get_bind()
    sql = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar()
    if old not in sql:
        raise RuntimeError(f"{table} CHECK not found as expected")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
                         (sql.replace(old, new), table))
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade():
    if _postgresql():
        op.drop_constraint(op.f("ck_bookings_status"), "bookings", type_="check")
        op.create_check_constraint(op.f("ck_bookings_status"), "bookings", NEW_STATUS)
        op.drop_constraint(op.f("ck_amendments_kind"), "amendments", type_="check")
        op.create_check_constraint(op.f("ck_amendments_kind"), "amendments", NEW_KIND)
        op.add_column("bookings", sa.Column("rehoused_from_id", sa.Integer(), nullable=True))
        op.create_foreign_key(op.f("fk_bookings_rehoused_from_id_bookings"), "bookings", "bookings",
                              ["rehoused_from_id"], ["id"])
    else:
        _sqlite_replace_check(OLD_STATUS, NEW_STATUS)
        _sqlite_replace_check(OLD_KIND, NEW_KIND, "amendments")
        op.execute("ALTER TABLE bookings ADD COLUMN rehoused_from_id INTEGER "
                   "CONSTRAINT fk_bookings_rehoused_from_id_bookings REFERENCES bookings (id)")
    op.create_index(op.f("ix_bookings_rehoused_from_id"), "bookings", ["rehoused_from_id"], unique=False)
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("breached_booking_id", sa.Integer(), nullable=False),
        sa.Column("offer_booking_id", sa.Integer(), nullable=False),
        sa.Column("amount_ore", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_ore > 0", name=op.f("ck_host_deductions_amount_positive")),
        sa.ForeignKeyConstraint(["host_id"], ["users.id"], name=op.f("fk_host_deductions_host_id_users")),
        sa.ForeignKeyConstraint(["breached_booking_id"], ["bookings.id"],
                                name=op.f("fk_host_deductions_breached_booking_id_bookings")),
        sa.ForeignKeyConstraint(["offer_booking_id"], ["bookings.id"],
                                name=op.f("fk_host_deductions_offer_booking_id_bookings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_deductions")),
        sa.UniqueConstraint("offer_booking_id", name=op.f("uq_host_deductions_offer_booking_id")),
    )
    op.create_index(op.f("ix_host_deductions_host_id"), TABLE, ["host_id"], unique=False)
    # What of a payout's booking share is withheld for the host's deductions (amount_ore is what is paid).
    if _postgresql():
        op.add_column("payouts", sa.Column("withheld_ore", sa.Integer(), server_default=sa.text("0"),
                                           nullable=False))
        op.create_check_constraint(op.f("ck_payouts_withheld_not_negative"), "payouts", "withheld_ore >= 0")
    else:
        op.execute("ALTER TABLE payouts ADD COLUMN withheld_ore INTEGER DEFAULT 0 NOT NULL "
                   "CONSTRAINT ck_payouts_withheld_not_negative CHECK (withheld_ore >= 0)")
    with op.batch_alter_table("flags") as batch_op:
        batch_op.add_column(sa.Column("response", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("responded_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("strike_suspended_from", sa.String(length=16), nullable=True))
    op.create_table(
        "flag_appeals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flag_id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open', 'upheld', 'overturned')", name=op.f("ck_flag_appeals_status")),
        sa.ForeignKeyConstraint(["flag_id"], ["flags.id"], name=op.f("fk_flag_appeals_flag_id_flags")),
        sa.ForeignKeyConstraint(["host_id"], ["users.id"], name=op.f("fk_flag_appeals_host_id_users")),
        sa.ForeignKeyConstraint(["decided_by_id"], ["users.id"], name=op.f("fk_flag_appeals_decided_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flag_appeals")),
        sa.UniqueConstraint("flag_id", name=op.f("uq_flag_appeals_flag_id")),
    )
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
    op.drop_table("flag_appeals")
    with op.batch_alter_table("flags") as batch_op:
        batch_op.drop_column("strike_suspended_from")
        batch_op.drop_column("responded_at")
        batch_op.drop_column("response")
    if _postgresql():
        op.drop_constraint(op.f("ck_payouts_withheld_not_negative"), "payouts", type_="check")
        op.drop_column("payouts", "withheld_ore")
    else:
        op.execute("ALTER TABLE payouts DROP COLUMN withheld_ore")
    if _postgresql():
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}")
        op.execute(f"DROP FUNCTION IF EXISTS {TABLE}_no_truncate()")
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_update ON {TABLE}")
        op.execute(f"DROP FUNCTION IF EXISTS {TABLE}_immutable()")
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_{event}")
    op.drop_index(op.f("ix_host_deductions_host_id"), table_name=TABLE)
    op.drop_table(TABLE)
    op.drop_index(op.f("ix_bookings_rehoused_from_id"), table_name="bookings")
    if _postgresql():
        op.drop_constraint(op.f("fk_bookings_rehoused_from_id_bookings"), "bookings", type_="foreignkey")
        op.drop_column("bookings", "rehoused_from_id")
        op.drop_constraint(op.f("ck_bookings_status"), "bookings", type_="check")
        op.create_check_constraint(op.f("ck_bookings_status"), "bookings", OLD_STATUS)
        op.drop_constraint(op.f("ck_amendments_kind"), "amendments", type_="check")
        op.create_check_constraint(op.f("ck_amendments_kind"), "amendments", OLD_KIND)
    else:
        op.execute("ALTER TABLE bookings DROP COLUMN rehoused_from_id")
        _sqlite_replace_check(NEW_STATUS, OLD_STATUS)
        _sqlite_replace_check(NEW_KIND, OLD_KIND, "amendments")
