"""Widen audit_entries.object_id to 255: it holds e-mail addresses (up to 254 characters) for sign-in
failures and reset requests; at 40 characters a longer address gave a 500 on PostgreSQL and could never be
locked out or reset.

Revision ID: 0006_accounts_integrity
Revises: 0005_deploy_guards
Create Date: 2026-12-01 23:40:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0006_accounts_integrity"
down_revision = "0005_deploy_guards"
branch_labels = None
depends_on = None


def _sqlite_immutable_triggers(create):
    # SQLite's batch mode rebuilds the table, which drops its triggers: put the append-only ones back.
    for event in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS audit_entries_no_{event}")
        if create:
            op.execute(f"CREATE TRIGGER audit_entries_no_{event} BEFORE {event.upper()} ON audit_entries "
                       f"BEGIN SELECT RAISE(ABORT, 'audit_entries rows are immutable'); END")


def _alter(length_from, length_to):
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.alter_column("object_id", existing_type=sa.String(length=length_from),
                              type_=sa.String(length=length_to), existing_nullable=True)
    if sqlite:
        _sqlite_immutable_triggers(create=True)


def upgrade():
    _alter(40, 255)


def downgrade():
    _alter(255, 40)
