"""Stripe webhook endpoint (outside /api/v1, CSRF-exempt, signature-checked)."""
from flask import Blueprint

from app.extensions import csrf

bp = Blueprint("stripe", __name__, url_prefix="/stripe")
csrf.exempt(bp)
