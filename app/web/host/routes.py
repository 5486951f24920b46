"""Host pages."""
from flask import Blueprint, render_template

from app.web.common import role_required

bp = Blueprint("host", __name__, url_prefix="/host")


@bp.get("/")
@role_required("host")
def dashboard():
    """The host's start page."""
    return render_template("host/dashboard.html")
