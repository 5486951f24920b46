"""bookings.note did two unrelated jobs (issue 11): it marked a waiting-list offer ("waitlist offer") and it
held the Swedish sentence of why a card payment was refunded in full. Each job gets its own column:
`kind` ('booking' or 'waitlist_offer') and `refund_reason` (a code of ledger.REFUND_REASONS, translated when
shown). Both are filled from `note`, which is then dropped: no free-text job remains.

Revision ID: 0013_booking_kind
Revises: 0012_orders
Create Date: 2026-12-12 00:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0013_booking_kind"
down_revision = "0012_orders"
branch_labels = None
depends_on = None

OFFER_NOTE = "waitlist offer"
KIND_CHECK = "kind IN ('booking', 'waitlist_offer')"
REFUND_REASON_CHECK = ("refund_reason IN ('late_payment_beds_taken', 'late_payment_over_limit', "
                       "'payment_after_cancellation', 'duplicate_payment')")
# The sentences settlement wrote into `note` (ledger.REFUND_REASONS as of 0012), frozen here.
REFUND_NOTES = {
    "late_payment_beds_taken": "Betalningen kom efter att reservationen löpt ut och sängarna hade hunnit bokas av "
                               "någon annan. Hela beloppet återbetalas.",
    "late_payment_over_limit": "Betalningen kom efter att reservationen löpt ut, och organisationen har sedan dess "
                               "nått sin gräns för bäddnätter. Hela beloppet återbetalas.",
    "payment_after_cancellation": "Betalningen kom efter att bokningen avbokats. Hela beloppet återbetalas.",
    "duplicate_payment": "Bokningen var redan betald. Den extra betalningen återbetalas.",
}

bookings = sa.table("bookings", sa.column("note", sa.String), sa.column("kind", sa.String),
                    sa.column("refund_reason", sa.String))


def _sqlite():
    return op.get_bind().dialect.name == "sqlite"


def upgrade():
    # No batch rebuild on SQLite: a copy-and-rename of bookings would trip the foreign keys that point at it
    # (PRAGMA foreign_keys=ON). Plain ADD COLUMN (with the CHECK inline) and DROP COLUMN (SQLite >= 3.35) do.
    if _sqlite():
        op.execute("ALTER TABLE bookings ADD COLUMN kind VARCHAR(16) DEFAULT 'booking' NOT NULL "
                   f"CONSTRAINT ck_bookings_kind CHECK ({KIND_CHECK})")
        op.execute("ALTER TABLE bookings ADD COLUMN refund_reason VARCHAR(40) "
                   f"CONSTRAINT ck_bookings_refund_reason CHECK ({REFUND_REASON_CHECK})")
    else:
        op.add_column("bookings", sa.Column("kind", sa.String(length=16), server_default=sa.text("'booking'"),
                                            nullable=False))
        op.add_column("bookings", sa.Column("refund_reason", sa.String(length=40), nullable=True))
        op.create_check_constraint(op.f("ck_bookings_kind"), "bookings", KIND_CHECK)
        op.create_check_constraint(op.f("ck_bookings_refund_reason"), "bookings", REFUND_REASON_CHECK)
    op.execute(bookings.update().where(bookings.c.note == OFFER_NOTE).values(kind="waitlist_offer"))
    for code, sentence in REFUND_NOTES.items():
        op.execute(bookings.update().where(bookings.c.note == sentence).values(refund_reason=code))
    if _sqlite():
        op.execute("ALTER TABLE bookings DROP COLUMN note")
    else:
        op.drop_column("bookings", "note")


def downgrade():
    if _sqlite():
        op.execute("ALTER TABLE bookings ADD COLUMN note VARCHAR(1000)")
    else:
        op.add_column("bookings", sa.Column("note", sa.String(length=1000), nullable=True))
    # As before: a refund's sentence overwrote the offer marker.
    op.execute(bookings.update().where(bookings.c.kind == "waitlist_offer").values(note=OFFER_NOTE))
    for code, sentence in REFUND_NOTES.items():
        op.execute(bookings.update().where(bookings.c.refund_reason == code).values(note=sentence))
    if _sqlite():
        op.execute("ALTER TABLE bookings DROP COLUMN refund_reason")
        op.execute("ALTER TABLE bookings DROP COLUMN kind")
    else:
        op.drop_column("bookings", "refund_reason")
        op.drop_column("bookings", "kind")
