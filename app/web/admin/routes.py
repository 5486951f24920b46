"""Admin pages."""
from flask import Blueprint, render_template

from app.web.common import role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@role_required("admin")
def dashboard():
    """The admin's start page."""
    return render_template("admin/dashboard.html")
