"""seasons.max_beds_per_organisation and seasons.max_open_holds, and an index on
delegations.organisation_number: one organisation number may hold only so many bed-nights and
unpaid card holds at once, whoever registered its delegations (issue 9, hoarding).

Revision ID: 0008_organisation_limits
Revises: 0007_invoice_credit
Create Date: 2026-12-03 00:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0008_organisation_limits"
down_revision = "0007_invoice_credit"
branch_labels = None
depends_on = None

CHECKS = {
    "max_beds_per_organisation": ("ck_seasons_max_beds_positive",
                                  "max_beds_per_organisation IS NULL OR max_beds_per_organisation >= 1"),
    "max_open_holds": ("ck_seasons_max_open_holds_positive", "max_open_holds >= 1"),
}


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        # SQLite takes a CHECK in ADD COLUMN: no batch rebuild of a table other tables refer to.
        name, check = CHECKS["max_beds_per_organisation"]
        op.execute(f"ALTER TABLE seasons ADD COLUMN max_beds_per_organisation INTEGER CONSTRAINT {name} CHECK ({check})")
        name, check = CHECKS["max_open_holds"]
        op.execute(f"ALTER TABLE seasons ADD COLUMN max_open_holds INTEGER DEFAULT 3 NOT NULL "
                   f"CONSTRAINT {name} CHECK ({check})")
    else:
        op.add_column("seasons", sa.Column("max_beds_per_organisation", sa.Integer(), nullable=True))
        op.add_column("seasons", sa.Column("max_open_holds", sa.Integer(), server_default=sa.text("3"),
                                           nullable=False))
        for name, check in CHECKS.values():
            op.create_check_constraint(op.f(name), "seasons", check)
    op.create_index(op.f("ix_delegations_organisation_number"), "delegations", ["organisation_number"])


def downgrade():
    op.drop_index(op.f("ix_delegations_organisation_number"), table_name="delegations")
    with op.batch_alter_table("seasons", schema=None) as batch_op:
        for name, _check in CHECKS.values():
            batch_op.drop_constraint(op.f(name), type_="check")
        batch_op.drop_column("max_open_holds")
        batch_op.drop_column("max_beds_per_organisation")
