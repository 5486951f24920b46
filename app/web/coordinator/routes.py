"""Coordinator pages."""
from flask import Blueprint, render_template

from app.web.common import role_required

bp = Blueprint("coordinator", __name__, url_prefix="/coordinator")


@bp.get("/")
@role_required("coordinator")
def dashboard():
    """The coordinator's start page."""
    return render_template("coordinator/dashboard.html")
