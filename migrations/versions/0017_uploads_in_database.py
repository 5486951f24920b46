"""Uploads live in the database (issue 14): the `uploads` table, and host_profiles.document_id instead of a file name.

Each vetting document on disk (UPLOAD_DIR/<document_name>, as this app server sees it) is read into `uploads`.
A document whose file is not on this disk (it was uploaded through another server) is reported and left out: its
profile has no document, and the host uploads it again. The files stay on disk; remove the folder once the release
is done. Run the upgrade on the server that holds the files (or copy every server's folder into one first).

Downgrade writes each document back to UPLOAD_DIR under a new name.

Revision ID: 0017_uploads_in_database
Revises: 0016_worker
Create Date: 2026-12-15 00:00:00
"""
import hashlib
import logging
import os
import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import app.models.types

revision = "0017_uploads_in_database"
down_revision = "0016_worker"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
EXTENSIONS = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}
TYPES_BY_EXTENSION = {"pdf": "application/pdf", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg"}


def _sqlite():
    return op.get_bind().dialect.name == "sqlite"


def _upload_dir():
    """The folder the app was configured with (`flask db upgrade` runs inside the app), else the default."""
    try:
        from flask import current_app
        return current_app.config["UPLOAD_DIR"]
    except (RuntimeError, KeyError):
        from config import BASE_DIR
        return os.environ.get("UPLOAD_DIR") or str(BASE_DIR / "instance" / "uploads")


def upgrade():
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=80), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", app.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(f"size_bytes >= 1 AND size_bytes <= {MAX_UPLOAD_BYTES}", name=op.f("ck_uploads_size")),
        sa.CheckConstraint("length(data) = size_bytes", name=op.f("ck_uploads_size_matches_data")),
        sa.CheckConstraint("length(sha256) = 64", name=op.f("ck_uploads_sha256_hex")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )
    # A plain ADD COLUMN ... REFERENCES (SQLite takes the foreign key only inline).
    if _sqlite():
        op.execute("ALTER TABLE host_profiles ADD COLUMN document_id INTEGER "
                   "CONSTRAINT fk_host_profiles_document_id_uploads REFERENCES uploads (id)")
    else:
        op.add_column("host_profiles", sa.Column("document_id", sa.Integer(), nullable=True))
        op.create_foreign_key(op.f("fk_host_profiles_document_id_uploads"), "host_profiles", "uploads",
                              ["document_id"], ["id"])

    bind = op.get_bind()
    profiles = sa.table("host_profiles", sa.column("user_id", sa.Integer), sa.column("document_name", sa.String),
                        sa.column("document_mime", sa.String), sa.column("document_original_name", sa.String),
                        sa.column("document_id", sa.Integer))
    uploads = sa.table("uploads", sa.column("id", sa.Integer), sa.column("kind", sa.String),
                       sa.column("filename", sa.String), sa.column("content_type", sa.String),
                       sa.column("size_bytes", sa.Integer), sa.column("sha256", sa.String),
                       sa.column("created_at", app.models.types.UTCDateTime(timezone=True)),
                       sa.column("data", sa.LargeBinary))
    folder = _upload_dir()
    moved, missing = 0, []
    rows = bind.execute(sa.select(profiles.c.user_id, profiles.c.document_name, profiles.c.document_mime,
                                  profiles.c.document_original_name)
                        .where(profiles.c.document_name.is_not(None)).order_by(profiles.c.user_id)).all()
    for user_id, name, mime, original in rows:
        path = os.path.join(folder, os.path.basename(name))
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_UPLOAD_BYTES + 1)
        except OSError as error:
            missing.append(f"host {user_id}: {path} ({error.strerror or error})")
            continue
        if not 1 <= len(data) <= MAX_UPLOAD_BYTES:
            missing.append(f"host {user_id}: {path} (empty or larger than 5 MB)")
            continue
        extension = name.rsplit(".", 1)[-1].lower()
        content_type = mime or TYPES_BY_EXTENSION.get(extension, "application/octet-stream")
        upload_id = bind.execute(uploads.insert().values(
            kind="vetting_document", filename=(original or name)[:200], content_type=content_type,
            size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), created_at=datetime.now(UTC),
            data=data).returning(uploads.c.id)).scalar_one()
        bind.execute(profiles.update().where(profiles.c.user_id == user_id).values(document_id=upload_id))
        moved += 1
    log.info("uploads: moved %d vetting document(s) from %s into the database", moved, folder)
    for line in missing:
        log.warning("uploads: vetting document not found, the host must upload it again: %s", line)

    if _sqlite():
        op.execute("ALTER TABLE host_profiles DROP COLUMN document_name")
        op.execute("ALTER TABLE host_profiles DROP COLUMN document_mime")
    else:
        op.drop_column("host_profiles", "document_name")
        op.drop_column("host_profiles", "document_mime")


def downgrade():
    op.add_column("host_profiles", sa.Column("document_name", sa.String(length=80), nullable=True))
    op.add_column("host_profiles", sa.Column("document_mime", sa.String(length=40), nullable=True))
    bind = op.get_bind()
    folder = _upload_dir()
    rows = bind.execute(sa.text(
        "SELECT p.user_id, u.content_type, u.data FROM host_profiles p JOIN uploads u ON u.id = p.document_id")).all()
    if rows:
        os.makedirs(folder, exist_ok=True)
    for user_id, content_type, data in rows:
        name = f"{secrets.token_hex(16)}.{EXTENSIONS.get(content_type, 'bin')}"
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(bytes(data))
        bind.execute(sa.text("UPDATE host_profiles SET document_name = :name, document_mime = :mime "
                             "WHERE user_id = :id"), {"name": name, "mime": content_type, "id": user_id})
    with op.batch_alter_table("host_profiles", schema=None) as batch_op:
        batch_op.drop_column("document_id")
    op.drop_table("uploads")
