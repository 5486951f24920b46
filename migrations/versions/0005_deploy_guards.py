"""Contracts and the audit log are append-only on PostgreSQL against TRUNCATE too: the row triggers of 0001 refuse
UPDATE and DELETE, but TRUNCATE fires no row trigger, so a statement-level trigger refuses it.

Revision ID: 0005_deploy_guards
Revises: 0003_outbox_index
Create Date: 2026-12-01 23:00:00
"""
from alembic import op

revision = "0005_deploy_guards"
down_revision = "0003_outbox_index"
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ("contracts", "audit_entries")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no TRUNCATE
    for table in APPEND_ONLY_TABLES:
        op.execute(f"""
            CREATE FUNCTION {table}_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{table} is append-only: TRUNCATE is refused' USING ERRCODE = 'restrict_violation';
            END $$;
        """)
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_no_truncate()")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in APPEND_ONLY_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {table}_no_truncate()")
