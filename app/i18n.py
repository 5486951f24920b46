"""Language helpers shared by services and pages: money, dates and times for the current locale.

The locale is Flask-Babel's (the request's, or the one forced for an e-mail's recipient); times
are shown in Europe/Stockholm. Swedish: "1 250 kr", "20 juni 2027"; English: "SEK 1,250",
"20 Jun 2027".
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from flask_babel import get_locale

STOCKHOLM = ZoneInfo("Europe/Stockholm")
LOCALES = ("sv", "en")
MAX_KRONOR = Decimal(1_000_000)  # keeps öre inside a 32-bit column; the real limits are the services'
DEFAULT_LOCALE = "sv"


def N_(message: str) -> str:
    """Mark a Swedish msgid for extraction; it is translated where it is shown."""
    return message


def current_locale() -> str:
    """The active language code, "sv" or "en"; Swedish outside a request."""
    try:
        locale = get_locale()
    except RuntimeError:  # no application context at all (a bare service call in a script)
        locale = None
    return str(locale) if locale is not None and str(locale) in LOCALES else DEFAULT_LOCALE


def kr(ore: int | None, locale: str | None = None) -> str:
    """1 250 kr (Swedish) or SEK 1,250 (English); öre shown only when there are any.

    `locale` fixes the language whatever the reader's (the contract PDF is written in Swedish kronor).
    """
    if ore is None:
        return "–"
    negative = ore < 0
    kronor, rest = divmod(abs(int(ore)), 100)
    english = (locale or current_locale()) == "en"
    grouped = f"{kronor:,}".replace(",", "," if english else "\u00a0")
    if rest:
        grouped += ("." if english else ",") + f"{rest:02d}"
    text = f"SEK {grouped}" if english else f"{grouped} kr"
    return ("−" if negative else "") + text


def normalise_amount(typed: str) -> str:
    """An amount as people type it, made plain: "1 200,50 kr" (Swedish) or "SEK 1,200.50" (English) -> "1200.50"."""
    text = (typed or "").lower().replace("\u00a0", "").replace(" ", "")
    # A comma is the decimal sign in Swedish and the thousands separator in English.
    text = text.replace(",", "") if current_locale() == "en" else text.replace(",", ".")
    return text.removeprefix("sek").removesuffix("sek").removesuffix("kr")


def kronor_to_ore(kronor: Decimal | int) -> int:
    """Kronor (whole, or with up to two decimals) to whole öre, without floats: the one conversion every door uses."""
    return int((Decimal(kronor) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def ore_to_kronor(ore: int | None) -> Decimal | None:
    """Öre as kronor for a form field to show."""
    return None if ore is None else Decimal(ore) / 100


def parse_kronor(typed: str) -> int:
    """Whole öre from an amount in kronor typed for the current locale; ValueError when it is not one."""
    try:
        kronor = Decimal(normalise_amount(typed))
        if not kronor.is_finite() or kronor != kronor.quantize(Decimal("0.01")) or abs(kronor) > MAX_KRONOR:
            raise ValueError(typed)
    except InvalidOperation:  # not a number, or one too long to hold
        raise ValueError(typed) from None
    return kronor_to_ore(kronor)


def _babel_locale() -> str:
    # British conventions for English (20 Jun 2027, 24-hour clock): the guests are European.
    return "en_GB" if current_locale() == "en" else "sv_SE"


def local_dt(value: datetime | str | None, fmt: str = "short") -> str:
    """A moment in Stockholm time for the current locale (an ISO string is parsed first)."""
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return format_datetime(value.astimezone(STOCKHOLM), fmt, tzinfo=STOCKHOLM, locale=_babel_locale())


def local_date(value: date | datetime | str | None, fmt: str = "medium") -> str:
    """A calendar date for the current locale; a moment (or an ISO string of one) is its date in Stockholm."""
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00")) if len(value) > 10 else date.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.astimezone(STOCKHOLM).date()
    return format_date(value, fmt, locale=_babel_locale())

