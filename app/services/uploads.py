"""Uploaded files: the one storage of the app, in the database, so every app server sees every file.

A door never touches files on disk: a service that takes an upload calls `store` inside its unit of work (the
file commits with the change that refers to it, or not at all), and a download reads it back with `fetch`.
`discard` removes a file nothing refers to any more. The checks of what a file may be (type, size) belong to the
service that takes it; the table's CHECKs hold the size ceiling and that size and hash describe the bytes.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import undefer

from app.extensions import db
from app.models import MAX_UPLOAD_BYTES, Upload
from app.services.base import now_or


@dataclass(frozen=True)
class StoredFile:
    """An upload as the door serves it."""

    id: int
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    data: bytes


def store(kind: str, filename: str, content_type: str, data: bytes, *, now: datetime | None = None) -> Upload:
    """Add a file (flush only: call inside the caller's unit of work). Its size must be 1 byte to 5 MB."""
    if not 1 <= len(data) <= MAX_UPLOAD_BYTES:
        raise ValueError(f"an upload is 1 to {MAX_UPLOAD_BYTES} bytes, not {len(data)}")
    name = "".join(c for c in os.path.basename(filename or "") if c.isprintable())[:200] or kind
    upload = Upload(kind=kind, filename=name, content_type=content_type,
                    size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), data=data,
                    created_at=now_or(now))
    db.session.add(upload)
    db.session.flush()
    return upload


def fetch(upload_id: int) -> StoredFile:
    """The file with its bytes (LookupError if there is none with this id)."""
    upload = db.session.scalar(select(Upload).where(Upload.id == upload_id).options(undefer(Upload.data)))
    if upload is None:
        raise LookupError(f"no upload {upload_id}")
    return StoredFile(upload.id, upload.filename, upload.content_type, upload.size_bytes, upload.sha256, upload.data)


def discard(upload_id: int) -> None:
    """Remove a file nothing refers to any more (flush only)."""
    db.session.execute(delete(Upload).where(Upload.id == upload_id))
