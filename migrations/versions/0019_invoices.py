"""Invoices organisations can pay (issue 16): delegations' invoice details, host profiles' organisation and VAT
numbers and VAT rate, the season's `unpaid_invoice_cancel_days`, and the invoice ledger: `invoices` (one per
invoice booking, with its OCR reference), `invoice_payments` (unique bank reference: imports are idempotent),
`credit_notes` (their own consecutive series K-YYYY-NNNNNN) and `invoice_reminders` (one row per step).

The four ledger tables are append-only like contracts: triggers refuse UPDATE and DELETE on both databases, and
TRUNCATE on PostgreSQL (the guards of 0001 and 0005, copied). Existing invoice bookings get their invoice here,
and a credit note for what cancellations already credited.

Revision ID: 0019_invoices
Revises: 0018_allocation_round
Create Date: 2026-12-08 00:00:00
"""
from datetime import date

from alembic import op
import sqlalchemy as sa

from app.models.types import UTCDateTime
from app.services.ocr import ocr_for_invoice_number

revision = "0019_invoices"
down_revision = "0018_allocation_round"
branch_labels = None
depends_on = None

LEDGER = ("invoices", "invoice_payments", "credit_notes", "invoice_reminders")
DELEGATION_COLUMNS = (("buyer_reference", 100), ("invoice_email", 254), ("address", 300), ("postal_code", 10),
                      ("city", 100))
HOST_CHECK = ("ck_host_profiles_vat_rate", "vat_rate_pct IS NULL OR (vat_rate_pct > 0 AND vat_rate_pct <= 25)")
SEASON_CHECK = ("ck_seasons_unpaid_cancel_days_positive", "unpaid_invoice_cancel_days >= 1")


def _postgresql():
    return op.get_bind().dialect.name == "postgresql"


def _columns():
    for name, length in DELEGATION_COLUMNS:
        op.add_column("delegations", sa.Column(name, sa.String(length=length), nullable=True))
    op.add_column("host_profiles", sa.Column("organisation_number", sa.String(length=20), nullable=True))
    op.add_column("host_profiles", sa.Column("vat_number", sa.String(length=20), nullable=True))
    if _postgresql():
        op.add_column("host_profiles", sa.Column("vat_rate_pct", sa.Integer(), nullable=True))
        op.create_check_constraint(HOST_CHECK[0], "host_profiles", HOST_CHECK[1])
        op.add_column("seasons", sa.Column("unpaid_invoice_cancel_days", sa.Integer(), server_default=sa.text("14"),
                                           nullable=False))
        op.create_check_constraint(SEASON_CHECK[0], "seasons", SEASON_CHECK[1])
    else:
        # SQLite takes a CHECK in ADD COLUMN: no batch rebuild of a table other tables refer to.
        op.execute(f"ALTER TABLE host_profiles ADD COLUMN vat_rate_pct INTEGER CONSTRAINT {HOST_CHECK[0]} "
                   f"CHECK ({HOST_CHECK[1]})")
        op.execute(f"ALTER TABLE seasons ADD COLUMN unpaid_invoice_cancel_days INTEGER DEFAULT 14 NOT NULL "
                   f"CONSTRAINT {SEASON_CHECK[0]} CHECK ({SEASON_CHECK[1]})")


def _tables():
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("ocr", sa.String(length=25), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("amount_ore", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_ore >= 0", name=op.f("ck_invoices_amount_not_negative")),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], name=op.f("fk_invoices_booking_id_bookings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("booking_id", name=op.f("uq_invoices_booking_id")),
        sa.UniqueConstraint("number", name=op.f("uq_invoices_number")),
        sa.UniqueConstraint("ocr", name=op.f("uq_invoices_ocr")),
    )
    op.create_table(
        "invoice_payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("amount_ore", sa.Integer(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("bank_reference", sa.String(length=80), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_ore > 0", name=op.f("ck_invoice_payments_amount_positive")),
        sa.CheckConstraint("source IN ('manual', 'bgmax')", name=op.f("ck_invoice_payments_source")),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_payments_invoice_id_invoices")),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_invoice_payments_actor_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_payments")),
        sa.UniqueConstraint("bank_reference", name=op.f("uq_invoice_payments_bank_reference")),
    )
    op.create_index(op.f("ix_invoice_payments_invoice_id"), "invoice_payments", ["invoice_id"], unique=False)
    op.create_table(
        "credit_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("amount_ore", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_ore > 0", name=op.f("ck_credit_notes_amount_positive")),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_credit_notes_invoice_id_invoices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_notes")),
        sa.UniqueConstraint("number", name=op.f("uq_credit_notes_number")),
    )
    op.create_index(op.f("ix_credit_notes_invoice_id"), "credit_notes", ["invoice_id"], unique=False)
    op.create_table(
        "invoice_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("sent_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"],
                                name=op.f("fk_invoice_reminders_invoice_id_invoices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_reminders")),
        sa.UniqueConstraint("invoice_id", "step", name="uq_invoice_reminders_invoice_step"),
    )
    op.create_index(op.f("ix_invoice_reminders_invoice_id"), "invoice_reminders", ["invoice_id"], unique=False)


def _backfill():
    """An invoice for every invoice booking already numbered; a credit note for what was already credited."""
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT id, invoice_number, invoice_due_on, total_ore, invoice_credited_ore, created_at, cancelled_at "
        "FROM bookings WHERE invoice_number IS NOT NULL ORDER BY id")).all()
    credit_seq: dict[str, int] = {}
    for booking_id, number, due_on, total, credited, created_at, cancelled_at in rows:
        # SQLite answers a raw query's timestamps as text ("2027-03-01 09:00:00..."); the date is its start.
        issued = date.fromisoformat(created_at[:10]) if isinstance(created_at, str) else created_at.date()
        due_on = date.fromisoformat(due_on[:10]) if isinstance(due_on, str) else due_on
        bind.execute(sa.text(
            "INSERT INTO invoices (booking_id, number, ocr, issued_on, due_on, amount_ore, created_at) "
            "VALUES (:b, :n, :o, :i, :d, :a, :c)"),
            {"b": booking_id, "n": number, "o": ocr_for_invoice_number(number), "i": issued,
             "d": due_on or issued, "a": total, "c": created_at})
        if credited:
            year = number.split("-")[1]
            credit_seq[year] = credit_seq.get(year, 0) + 1
            invoice_id = bind.execute(sa.text("SELECT id FROM invoices WHERE booking_id = :b"),
                                      {"b": booking_id}).scalar()
            bind.execute(sa.text(
                "INSERT INTO credit_notes (invoice_id, number, issued_on, amount_ore, reason, created_at) "
                "VALUES (:i, :n, :d, :a, 'cancellation', :c)"),
                {"i": invoice_id, "n": f"K-{year}-{credit_seq[year]:06d}", "d": issued, "a": credited,
                 "c": cancelled_at or created_at})
    for year, value in credit_seq.items():
        bind.execute(sa.text("INSERT INTO counters (name, value) VALUES (:n, :v)"),
                     {"n": f"credit_note:{year}", "v": value})


def _guards():
    for table in LEDGER:
        if _postgresql():
            op.execute(f"""
                CREATE FUNCTION {table}_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    RAISE EXCEPTION '{table} rows are immutable' USING ERRCODE = 'restrict_violation';
                END $$;
            """)
            op.execute(f"CREATE TRIGGER {table}_no_update BEFORE UPDATE OR DELETE ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION {table}_immutable()")
            op.execute(f"""
                CREATE FUNCTION {table}_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    RAISE EXCEPTION '{table} is append-only: TRUNCATE is refused' USING ERRCODE = 'restrict_violation';
                END $$;
            """)
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_no_truncate()")
        else:
            for event in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{table} rows are immutable'); END")


def upgrade():
    _columns()
    _tables()
    _backfill()
    _guards()


def downgrade():
    for table in reversed(LEDGER):
        if _postgresql():
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_no_truncate()")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_immutable()")
        op.drop_table(table)
    op.execute("DELETE FROM counters WHERE name LIKE 'credit_note:%'")
    with op.batch_alter_table("seasons") as batch:
        if _postgresql():
            batch.drop_constraint(SEASON_CHECK[0], type_="check")
        batch.drop_column("unpaid_invoice_cancel_days")
    with op.batch_alter_table("host_profiles") as batch:
        if _postgresql():
            batch.drop_constraint(HOST_CHECK[0], type_="check")
        for name in ("vat_rate_pct", "vat_number", "organisation_number"):
            batch.drop_column(name)
    with op.batch_alter_table("delegations") as batch:
        for name, _length in reversed(DELEGATION_COLUMNS):
            batch.drop_column(name)
