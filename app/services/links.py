"""External links: every address in mail, API answers and calendars starts with the configured BASE_URL.

Never the request's Host header: a request for another host (or a forged one) cannot redirect a reset link or a
contract's verify link there.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app


def external_url(endpoint: str, **values) -> str:
    """The absolute address of `endpoint` on BASE_URL (works in a request, a CLI command or a job)."""
    base = urlsplit(current_app.config["BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "https")
    return adapter.build(endpoint, values, force_external=True)
