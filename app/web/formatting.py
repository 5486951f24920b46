"""Template filters: money in kronor, dates and times in Europe/Stockholm, per locale."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Flask
from flask_babel import format_date, format_datetime, get_locale

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def kr(ore: int | None) -> str:
    """1 250 kr (Swedish) or SEK 1,250 (English); öre shown only when there are any."""
    if ore is None:
        return "–"
    negative = ore < 0
    kronor, rest = divmod(abs(int(ore)), 100)
    english = str(get_locale() or "sv") == "en"
    grouped = f"{kronor:,}".replace(",", "," if english else "\u00a0")
    if rest:
        grouped += ("." if english else ",") + f"{rest:02d}"
    text = f"SEK {grouped}" if english else f"{grouped} kr"
    return ("−" if negative else "") + text


def local_dt(value: datetime | None, fmt: str = "short") -> str:
    if value is None:
        return "–"
    return format_datetime(value.astimezone(STOCKHOLM), fmt)


def local_date(value: date | None, fmt: str = "medium") -> str:
    if value is None:
        return "–"
    return format_date(value, fmt)


def register_filters(app: Flask) -> None:
    app.jinja_env.filters["kr"] = kr
    app.jinja_env.filters["dt"] = local_dt
    app.jinja_env.filters["d"] = local_date
