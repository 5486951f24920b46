"""The allocation round (issue 15, API.md "The allocation round (fair opening)"): the season's round fields
(requests_open_at, allocation_at, allocation_payment_hours), allocation_rounds (the secret seed, its published
SHA-256, the draw's state) and allocation_requests (one live request per organisation number and season, by a
partial UNIQUE index).

Database guards, as the contracts have theirs: a round's seed and commitment never change and a round is never
deleted (the commitment published before the first request stays the one the draw is checked against); a request's
`ref` never changes, nor its `rank` once the draw has set it, and no request is deleted.

Revision ID: 0018_allocation_round
Revises: 0017_uploads_in_database
Create Date: 2026-12-16 00:00:00
"""
from alembic import op
import sqlalchemy as sa

from app.models.types import UTCDateTime

revision = "0018_allocation_round"
down_revision = "0017_uploads_in_database"
branch_labels = None
depends_on = None

ROUND_COMPLETE = "(requests_open_at IS NULL) = (allocation_at IS NULL)"
ROUND_ORDERED = "requests_open_at IS NULL OR requests_open_at < allocation_at"
HOURS_POSITIVE = "allocation_payment_hours >= 1"
LIVE = "status <> 'withdrawn'"


def _sqlite():
    return op.get_bind().dialect.name == "sqlite"


def _guards():
    """The round's seed and commitment, a request's ref and its rank once set: fixed; neither row is deleted."""
    if _sqlite():
        op.execute("CREATE TRIGGER allocation_rounds_seed_fixed BEFORE UPDATE OF seed, seed_commitment "
                   "ON allocation_rounds WHEN NEW.seed IS NOT OLD.seed OR NEW.seed_commitment IS NOT "
                   "OLD.seed_commitment BEGIN SELECT RAISE(ABORT, 'a round''s seed and commitment never change'); "
                   "END")
        op.execute("CREATE TRIGGER allocation_rounds_no_delete BEFORE DELETE ON allocation_rounds "
                   "BEGIN SELECT RAISE(ABORT, 'allocation rounds are never deleted'); END")
        op.execute("CREATE TRIGGER allocation_requests_draw_fixed BEFORE UPDATE OF ref, rank "
                   "ON allocation_requests WHEN NEW.ref IS NOT OLD.ref OR "
                   "(OLD.rank IS NOT NULL AND NEW.rank IS NOT OLD.rank) "
                   "BEGIN SELECT RAISE(ABORT, 'a request''s ref and drawn rank never change'); END")
        op.execute("CREATE TRIGGER allocation_requests_no_delete BEFORE DELETE ON allocation_requests "
                   "BEGIN SELECT RAISE(ABORT, 'allocation requests are never deleted'); END")
        return
    op.execute("""
        CREATE FUNCTION allocation_rounds_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION 'allocation rounds are never deleted' USING ERRCODE = 'restrict_violation';
            END IF;
            IF NEW.seed IS DISTINCT FROM OLD.seed OR NEW.seed_commitment IS DISTINCT FROM OLD.seed_commitment THEN
                RAISE EXCEPTION 'a round''s seed and commitment never change' USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN NEW;
        END $$;
    """)
    op.execute("CREATE TRIGGER allocation_rounds_guard BEFORE UPDATE OR DELETE ON allocation_rounds "
               "FOR EACH ROW EXECUTE FUNCTION allocation_rounds_guard()")
    op.execute("""
        CREATE FUNCTION allocation_requests_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION 'allocation requests are never deleted' USING ERRCODE = 'restrict_violation';
            END IF;
            IF NEW.ref IS DISTINCT FROM OLD.ref OR (OLD.rank IS NOT NULL AND NEW.rank IS DISTINCT FROM OLD.rank) THEN
                RAISE EXCEPTION 'a request''s ref and drawn rank never change' USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN NEW;
        END $$;
    """)
    op.execute("CREATE TRIGGER allocation_requests_guard BEFORE UPDATE OR DELETE ON allocation_requests "
               "FOR EACH ROW EXECUTE FUNCTION allocation_requests_guard()")
    for table in ("allocation_rounds", "allocation_requests"):
        op.execute(f"""
            CREATE FUNCTION {table}_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{table} rows are never deleted: TRUNCATE is refused'
                    USING ERRCODE = 'restrict_violation';
            END $$;
        """)
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_no_truncate()")


def upgrade():
    # No batch rebuild on SQLite: a copy-and-rename of seasons would trip the foreign keys that point at it. Plain
    # ADD COLUMN; the CHECKs that name both times ride on the last column added, once both exist.
    if _sqlite():
        op.execute("ALTER TABLE seasons ADD COLUMN requests_open_at DATETIME")
        op.execute("ALTER TABLE seasons ADD COLUMN allocation_at DATETIME")
        op.execute("ALTER TABLE seasons ADD COLUMN allocation_payment_hours INTEGER DEFAULT 48 NOT NULL "
                   f"CONSTRAINT ck_seasons_allocation_payment_hours_positive CHECK ({HOURS_POSITIVE}) "
                   f"CONSTRAINT ck_seasons_round_complete CHECK ({ROUND_COMPLETE}) "
                   f"CONSTRAINT ck_seasons_round_ordered CHECK ({ROUND_ORDERED})")
    else:
        op.add_column("seasons", sa.Column("requests_open_at", UTCDateTime(timezone=True), nullable=True))
        op.add_column("seasons", sa.Column("allocation_at", UTCDateTime(timezone=True), nullable=True))
        op.add_column("seasons", sa.Column("allocation_payment_hours", sa.Integer(), server_default=sa.text("48"),
                                           nullable=False))
        op.create_check_constraint(op.f("ck_seasons_allocation_payment_hours_positive"), "seasons", HOURS_POSITIVE)
        op.create_check_constraint(op.f("ck_seasons_round_complete"), "seasons", ROUND_COMPLETE)
        op.create_check_constraint(op.f("ck_seasons_round_ordered"), "seasons", ROUND_ORDERED)

    op.create_table(
        "allocation_rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("season_id", sa.Integer(), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("seed_commitment", sa.String(length=64), nullable=False),
        sa.Column("draw_state", sa.String(length=16), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("draw_started_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("drawn_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("draw_state IN ('pending', 'drawing', 'drawn')",
                           name=op.f("ck_allocation_rounds_draw_state")),
        sa.ForeignKeyConstraint(["season_id"], ["seasons.id"], name=op.f("fk_allocation_rounds_season_id_seasons")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocation_rounds")),
        sa.UniqueConstraint("season_id", name=op.f("uq_allocation_rounds_season_id")),
    )
    op.create_table(
        "allocation_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("season_id", sa.Integer(), nullable=False),
        sa.Column("delegation_id", sa.Integer(), nullable=False),
        sa.Column("coordinator_id", sa.Integer(), nullable=False),
        sa.Column("organisation_number", sa.String(length=20), nullable=False),
        sa.Column("ref", sa.String(length=32), nullable=False),
        sa.Column("check_in", sa.Date(), nullable=False),
        sa.Column("check_out", sa.Date(), nullable=False),
        sa.Column("beds", sa.Integer(), nullable=False),
        sa.Column("max_walking_minutes", sa.Integer(), nullable=True),
        sa.Column("max_price_ore", sa.Integer(), nullable=True),
        sa.Column("max_listings", sa.Integer(), nullable=False),
        sa.Column("preferred_listing_ids", sa.Text(), nullable=False),
        sa.Column("payment_method", sa.String(length=8), nullable=False),
        sa.Column("terms_version", sa.String(length=40), nullable=False),
        sa.Column("accepted_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_ip", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("waitlist_entry_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_at", UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('submitted', 'withdrawn', 'allocated', 'unallocated')",
                           name=op.f("ck_allocation_requests_status")),
        sa.CheckConstraint("payment_method IN ('invoice', 'card')", name=op.f("ck_allocation_requests_payment_method")),
        sa.CheckConstraint("beds >= 1 AND beds <= 100", name=op.f("ck_allocation_requests_beds_range")),
        sa.CheckConstraint("max_listings >= 1 AND max_listings <= 5",
                           name=op.f("ck_allocation_requests_max_listings_range")),
        sa.CheckConstraint("check_out > check_in", name=op.f("ck_allocation_requests_stay_ordered")),
        sa.CheckConstraint("rank IS NULL OR rank >= 1", name=op.f("ck_allocation_requests_rank_positive")),
        sa.ForeignKeyConstraint(["coordinator_id"], ["users.id"],
                                name=op.f("fk_allocation_requests_coordinator_id_users")),
        sa.ForeignKeyConstraint(["delegation_id"], ["delegations.id"],
                                name=op.f("fk_allocation_requests_delegation_id_delegations")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_allocation_requests_order_id_orders")),
        sa.ForeignKeyConstraint(["season_id"], ["seasons.id"], name=op.f("fk_allocation_requests_season_id_seasons")),
        sa.ForeignKeyConstraint(["waitlist_entry_id"], ["waitlist_entries.id"],
                                name=op.f("fk_allocation_requests_waitlist_entry_id_waitlist_entries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocation_requests")),
        sa.UniqueConstraint("ref", name=op.f("uq_allocation_requests_ref")),
    )
    op.create_index(op.f("ix_allocation_requests_coordinator_id"), "allocation_requests", ["coordinator_id"],
                    unique=False)
    op.create_index(op.f("ix_allocation_requests_delegation_id"), "allocation_requests", ["delegation_id"],
                    unique=False)
    op.create_index("ix_allocation_requests_season_rank", "allocation_requests", ["season_id", "rank"], unique=False)
    op.create_index("uq_allocation_requests_organisation", "allocation_requests",
                    ["season_id", "organisation_number"], unique=True,
                    sqlite_where=sa.text(LIVE), postgresql_where=sa.text(LIVE))
    _guards()


def downgrade():
    if _sqlite():
        for trigger in ("allocation_rounds_seed_fixed", "allocation_rounds_no_delete",
                        "allocation_requests_draw_fixed", "allocation_requests_no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    else:
        for table in ("allocation_rounds", "allocation_requests"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_guard ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_guard()")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_no_truncate()")
    op.drop_index("uq_allocation_requests_organisation", table_name="allocation_requests")
    op.drop_index("ix_allocation_requests_season_rank", table_name="allocation_requests")
    op.drop_index(op.f("ix_allocation_requests_delegation_id"), table_name="allocation_requests")
    op.drop_index(op.f("ix_allocation_requests_coordinator_id"), table_name="allocation_requests")
    op.drop_table("allocation_requests")
    op.drop_table("allocation_rounds")
    if _sqlite():
        # The CHECKs ride on allocation_payment_hours: dropping it first frees the other two columns.
        op.execute("ALTER TABLE seasons DROP COLUMN allocation_payment_hours")
        op.execute("ALTER TABLE seasons DROP COLUMN allocation_at")
        op.execute("ALTER TABLE seasons DROP COLUMN requests_open_at")
    else:
        op.drop_constraint(op.f("ck_seasons_round_ordered"), "seasons", type_="check")
        op.drop_constraint(op.f("ck_seasons_round_complete"), "seasons", type_="check")
        op.drop_constraint(op.f("ck_seasons_allocation_payment_hours_positive"), "seasons", type_="check")
        op.drop_column("seasons", "allocation_payment_hours")
        op.drop_column("seasons", "allocation_at")
        op.drop_column("seasons", "requests_open_at")
