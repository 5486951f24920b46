"""Free text from users: the one rule for which characters a text field may hold.

Control characters (C0 U+0000-U+001F, DEL U+007F and C1 U+0080-U+009F) are refused; a multi-line field
(descriptions, notes, reasons) may hold TAB, LF and CR. Bidirectional overrides and isolates
(U+202A-U+202E, U+2066-U+2069) are refused everywhere: they can make a name or an address read
differently from what is stored, in pages, e-mail, PDFs and calendar feeds alike.
"""
from __future__ import annotations

import re

from flask_babel import gettext as _

from app.services.errors import ValidationFailed

_BIDI = "\u202a-\u202e\u2066-\u2069"
_SINGLE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_MULTI_LINE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}]")


def text_problem(value, *, multiline: bool = False) -> str | None:
    """The (translated) message for a text that holds a refused character, or None when it is fine."""
    if not isinstance(value, str):
        return None
    if (_MULTI_LINE if multiline else _SINGLE_LINE).search(value):
        if multiline:
            return _("Texten innehåller otillåtna tecken (styrtecken eller tecken som vänder textriktningen); "
                     "radbrytningar och tabbar går bra.")
        return _("Texten innehåller otillåtna tecken (radbrytningar, styrtecken eller tecken som vänder "
                 "textriktningen).")
    return None


def clean_text(value, field: str, *, multiline: bool = False, errors: dict | None = None):
    """Return `value` if it holds no refused character; otherwise raise ValidationFailed for `field`.

    With `errors` (a services' field -> messages dict), the message is recorded there instead, so that
    one answer names every bad field.
    """
    problem = text_problem(value, multiline=multiline)
    if problem is not None:
        if errors is None:
            raise ValidationFailed({field: [problem]})
        errors.setdefault(field, []).append(problem)
    return value


# A phone number as people write it: an optional leading +, then digits, spaces, hyphens and parentheses,
# at least six digits and at most 40 characters in all.
_PHONE = re.compile(r"\+?[0-9 ()-]+")


def phone_number(value, field: str = "phone", *, errors: dict | None = None) -> str | None:
    """The phone number stripped, None for an empty one; a refused character or shape is `field`'s error."""
    value = (value or "").strip()
    if not value:
        return None
    problem = text_problem(value)
    if problem is None and (len(value) > 40 or not _PHONE.fullmatch(value) or sum(c.isdigit() for c in value) < 6):
        problem = _("Ange ett telefonnummer, till exempel +46 70 123 45 67.")
    if problem is not None:
        if errors is None:
            raise ValidationFailed({field: [problem]})
        errors.setdefault(field, []).append(problem)
    return value
