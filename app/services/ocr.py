"""OCR references for Bankgirot: digits only, a length digit, then a Luhn (mod 10) check digit.

The reference is derived from the invoice number alone (F-2027-000123 -> 2027000123, then the length digit, then
the check digit: 202700012322), so it is stable (the same invoice always has the same reference), unique (invoice
numbers are, and the digits of F-YYYY-NNNNNN are a one-to-one image of them) and checkable by the bank: Bankgirot's
"hård kontroll" checks the Luhn digit and the length digit (the last digit of the reference's length, check and
length digits included). Pure functions: migration 0018 uses them to backfill.
"""
from __future__ import annotations

import re

from stdnum import luhn

MAX_LENGTH = 25  # Bankgirot's OCR references have at most 25 digits


def ocr_for_invoice_number(number: str) -> str:
    """The OCR reference of an invoice number such as F-2027-000123."""
    digits = re.sub(r"\D", "", number).lstrip("0") or "0"
    body = digits + str((len(digits) + 2) % 10)
    reference = body + luhn.calc_check_digit(body)
    if len(reference) > MAX_LENGTH:
        raise ValueError(f"{number!r} makes an OCR reference longer than {MAX_LENGTH} digits")
    return reference


def is_valid_ocr(reference: str) -> bool:
    """Digits only, 2 to 25 of them, a correct length digit and a correct Luhn check digit."""
    if not reference.isdigit() or not 2 <= len(reference) <= MAX_LENGTH:
        return False
    if reference[-2] != str(len(reference) % 10):
        return False
    return luhn.is_valid(reference)
