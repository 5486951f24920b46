"""problem+json answers (RFC 9457), shared by the API, the Stripe webhook and the app's error handlers."""
from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from app.services.errors import DomainError

PROBLEM_TYPE = "https://sangplats.se/problems/"


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> Response:
    """A problem+json response with a stable `code` and any facts the client needs."""
    body = {"type": PROBLEM_TYPE + code, "title": title, "status": status, "detail": detail, "code": code, **extra}
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def problem_from_error(error: DomainError) -> Response:
    """A domain error as problem+json: its status, code, title, message and facts."""
    facts = dict(error.facts)
    response = problem(error.status, error.code, error.title, error.message, **facts)
    if error.status == 429 and "retry_after" in facts:
        response.headers["Retry-After"] = str(facts["retry_after"])
    return response
