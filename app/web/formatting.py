"""Template filters: money in kronor, dates and times in Europe/Stockholm, per locale (see app.i18n); enum words."""
from __future__ import annotations

from flask import Flask

from app import labels
from app.i18n import STOCKHOLM, kr, local_date, local_dt  # noqa: F401  (re-exported for the pages)


def register_filters(app: Flask) -> None:
    app.jinja_env.filters["kr"] = kr
    app.jinja_env.filters["dt"] = local_dt
    app.jinja_env.filters["d"] = local_date
    # Every enum's words and badge colour come from app.labels: label('booking_status', b.status).
    app.jinja_env.globals["label"] = labels.label
    app.jinja_env.globals["badge_class"] = labels.badge_class
    app.jinja_env.globals["in_sentence"] = labels.in_sentence
