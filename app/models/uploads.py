"""Uploaded files, kept in the database so that every app server serves them (issue 14)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # the largest file any upload may be (the vetting document's limit)


class Upload(Model):
    """One uploaded file: its bytes, what they are (content type, size, SHA-256) and when they came.

    `data` is deferred: reading the row for its name or type never loads the file itself.
    """

    __tablename__ = "uploads"
    __table_args__ = (
        CheckConstraint(f"size_bytes >= 1 AND size_bytes <= {MAX_UPLOAD_BYTES}", name="size"),
        CheckConstraint("length(data) = size_bytes", name="size_matches_data"),
        CheckConstraint("length(sha256) = 64", name="sha256_hex"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # what the file is for, e.g. "vetting_document"
    filename: Mapped[str] = mapped_column(String(200))  # the name it was uploaded with (its download name)
    content_type: Mapped[str] = mapped_column(String(80))
    size_bytes: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
