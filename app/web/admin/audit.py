"""Admin page for the append-only audit log."""
from flask import render_template, request
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry
from app.web.admin.routes import bp
from app.web.common import role_required

PER_PAGE = 50
MAX_PAGE = 100_000  # keeps the OFFSET a sane number whatever is typed in the address


@bp.get("/audit")
@role_required("admin")
def audit_log():
    """The audit log, newest first, paginated, filtered by the start of the action name."""
    prefix = request.args.get("action", "").strip()[:60]
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if prefix:
        query = query.where(AuditEntry.action.startswith(prefix, autoescape=True))
    number = min(max(request.args.get("page", 1, type=int), 1), MAX_PAGE)
    page = db.paginate(query, page=number, per_page=PER_PAGE, error_out=False)
    return render_template("admin/audit.html", page=page, prefix=prefix)
