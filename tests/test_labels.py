"""Every enum's words live in app.labels: each value of each model's enum has Swedish words and English ones."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask_babel import force_locale
from sqlalchemy import CheckConstraint

from app import labels
from app.extensions import db
from app.models import BED_KINDS, BOOKING_STATUSES, FLAG_CATEGORIES, VETTING_STATUSES
from app.services.allocation import ROUND_STATUSES
from app.services.ledger import COUNTED_REFUND_STATUSES, REFUND_REASONS
from app.services.payments import OPEN_STATUSES

ENGLISH_PO = Path(__file__).resolve().parent.parent / "app" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
# Which labels kind holds the words of each enum column the database constrains.
KIND_OF_COLUMN = {
    ("bookings", "status"): "booking_status", ("bookings", "payment_method"): "payment_method",
    ("bed_nights", "state"): "bed_night_state", ("users", "role"): "role", ("users", "locale"): "locale",
    ("flags", "category"): "flag_category", ("flags", "status"): "flag_status", ("flags", "source"): "flag_source",
    ("waitlist_entries", "status"): "waitlist_status", ("host_profiles", "vetting_status"): "vetting_status",
    ("stripe_events", "status"): "webhook_status", ("payouts", "status"): "payout_status",
    ("beds", "kind"): "bed_kind", ("orders", "status"): "order_status", ("amendments", "kind"): "amendment_kind",
    ("allocation_requests", "status"): "allocation_status", ("allocation_requests", "payment_method"): "payment_method",
    ("flag_appeals", "status"): "flag_appeal_status",
    ("invoice_payments", "source"): "invoice_payment_source",
}
# Constrained columns whose values are not label words: shown in other words, or not shown at all.
NOT_LABELLED = {
    ("bookings", "kind"): "how the booking was made; never shown, it only picks the mails' wording",
    ("bookings", "refund_reason"): "shown as its sentence in ledger.REFUND_REASONS",
    ("allocation_rounds", "draw_state"): "the draw's progress; shown as the round's status (allocation_round_status)",
}
IN_LIST = re.compile(r"(\w+) IN \(([^)]*)\)")


def constrained_enums() -> dict[tuple[str, str], set[str]]:
    """(table, column) -> the values its CHECK constraint allows, read from the models' metadata."""
    found: dict[tuple[str, str], set[str]] = {}
    for table in db.metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, CheckConstraint):
                for column, values in IN_LIST.findall(str(constraint.sqltext)):
                    found.setdefault((table.name, column), set()).update(re.findall(r"'([^']*)'", values))
    return found


def enums() -> dict[str, set[str]]:
    """Every enum kind and its values: the constrained columns, the models' tuples, and those the services name."""
    wanted: dict[str, set[str]] = {}
    for key, values in constrained_enums().items():
        if key in NOT_LABELLED:
            continue
        assert key in KIND_OF_COLUMN, f"the enum column {key} has no labels kind"
        wanted.setdefault(KIND_OF_COLUMN[key], set()).update(values)
    wanted["booking_status"] |= set(BOOKING_STATUSES)
    wanted["vetting_status"] |= set(VETTING_STATUSES)
    wanted["bed_kind"] |= set(BED_KINDS)
    wanted["flag_category"] |= set(FLAG_CATEGORIES)
    wanted["refund_status"] = {*COUNTED_REFUND_STATUSES, "rejected"}
    wanted["payment_status"] = {*OPEN_STATUSES, "succeeded", "canceled", "failed"}
    wanted["vetting_decision"] = {"approve", "reject", "suspend", "reinstate"}
    wanted["allocation_round_status"] = set(ROUND_STATUSES)
    return wanted


def english_catalogue() -> dict[str, str]:
    with ENGLISH_PO.open("rb") as handle:
        return {message.id: message.string for message in read_po(handle) if message.id}


def test_every_enum_value_has_swedish_and_english_words():
    english = english_catalogue()
    missing = []
    for kind, values in enums().items():
        for value in sorted(values):
            words = labels.LABELS[kind].get(value)
            texts = [words.text, *(words.by_audience or {}).values()] if words else []
            if not texts:
                missing.append(f"{kind}.{value}: no Swedish words")
            missing += [f"{kind}.{value}: no English for {text!r}" for text in texts if not english.get(text)]
    assert missing == []


def test_every_booking_refund_reason_has_swedish_and_english_words():
    english = english_catalogue()
    reasons = constrained_enums()[("bookings", "refund_reason")]
    assert reasons and all(REFUND_REASONS.get(reason) and english.get(REFUND_REASONS[reason]) for reason in reasons)


def test_no_labels_kind_is_left_without_an_enum():
    assert set(labels.LABELS) == set(enums())


@pytest.mark.parametrize(("locale", "audience", "expected"), [
    ("sv", None, "Avbokad av gästen"), ("sv", "coordinator", "Avbokad av er"), ("sv", "host", "Avbokad av gästen"),
    ("en", None, "Cancelled by the guests"), ("en", "coordinator", "Cancelled by you"),
])
def test_one_status_in_each_audiences_words(app, locale, audience, expected):
    with app.test_request_context(), force_locale(locale):
        assert labels.label("booking_status", "cancelled_by_guest", audience) == expected
    with app.app_context():  # a forced language wins over the current one (the bilingual contract PDF)
        assert labels.label("booking_status", "cancelled_by_guest", audience, locale=locale) == expected


def test_words_in_a_sentence_and_unknown_values():
    assert labels.in_sentence("booking_status", "awaiting_payment") == "väntar på betalning"
    assert labels.label("booking_status", "not_a_status") == "not_a_status"
    assert labels.badge_class("booking_status", "confirmed") == "badge-ok"
