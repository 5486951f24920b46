"""Payment pages: pay by card, payment status and receipts; admin payments; host payouts."""
from flask import Blueprint

bp = Blueprint("payments", __name__)
