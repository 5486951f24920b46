"""Uploads live in the database (issue 14): every app server serves every document, whatever its working folder.

The defect: two app servers with separate working folders on one database; a vetting document uploaded through one
answered 500 (`FileNotFoundError`) when the admin downloaded it through the other. Here the two servers are two
apps in one process with separate UPLOAD_DIRs; tests/test_multi_server.py does the same with two gunicorns.
"""
from __future__ import annotations

import hashlib
import io
import json

import pyotp
import pytest
from sqlalchemy import create_engine, func, select, text

from app import create_app
from app.extensions import db
from app.models import AuditEntry, HostProfile, Upload
from app.services import accounts, uploads, vetting
from app.services.base import Actor
from app.services.errors import NotFound, ValidationFailed
from tests.helpers import PASSWORD, ROOT, csrf_from

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _sign_in(client, email, otp=None):
    page = client.get("/login")
    data = {"csrf_token": csrf_from(page), "email": email, "password": PASSWORD}
    if otp:
        data["otp"] = otp
    answer = client.post("/login", data=data)
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]


def _upload(client, name, data):
    page = client.get("/account/vetting-document")
    return client.post("/account/vetting-document", data={
        "csrf_token": csrf_from(page), "document": (io.BytesIO(data), name)}, content_type="multipart/form-data")


@pytest.fixture
def second_server(database_url, tmp_path):
    """A second app on the same database with a working folder of its own (another machine's)."""
    other = create_app("testing", {"SQLALCHEMY_DATABASE_URI": database_url, "UPLOAD_DIR": str(tmp_path / "two"),
                                   "MAIL_OUTBOX_DIR": str(tmp_path / "two-mail")})
    yield other
    with other.app_context():
        db.engine.dispose()


def test_a_document_uploaded_through_one_server_is_downloaded_through_another(app, client, make_host,
                                                                               second_server, tmp_path):
    host = make_host(approved=False)
    _sign_in(client, host.email)
    assert _upload(client, "lagfart.pdf", PDF).status_code == 302
    secret = pyotp.random_base32()
    admin = accounts.create_admin("granskare@example.se", PASSWORD, "Granskare", totp_secret=secret)
    admin_browser = second_server.test_client()
    _sign_in(admin_browser, admin.email, otp=pyotp.TOTP(secret).now())
    answer = admin_browser.get(f"/account/vetting-document/{host.id}")
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    assert answer.data == PDF
    assert answer.mimetype == "application/pdf"
    assert 'filename=lagfart.pdf' in answer.headers["Content-Disposition"]
    assert answer.headers["Cache-Control"] == "no-store"
    # Nothing was written to either server's folder.
    assert not any(tmp_path.joinpath(folder).exists() for folder in ("uploads", "two"))


def test_an_upload_row_has_its_type_size_hash_and_time(app, make_host):
    host = make_host(approved=False)
    vetting.attach_document(Actor(host.id, "host"), "Lagfart.PDF", PDF)
    profile = db.session.get(HostProfile, host.id)
    upload = db.session.get_one(Upload, profile.document_id)
    assert (upload.kind, upload.content_type, upload.size_bytes) == ("vetting_document", "application/pdf", len(PDF))
    assert upload.sha256 == hashlib.sha256(PDF).hexdigest()
    assert upload.filename == "Lagfart.PDF" and upload.created_at is not None
    stored = uploads.fetch(upload.id)
    assert stored.data == PDF and stored.sha256 == upload.sha256
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "host.document_uploaded")).one()
    assert json.loads(entry.after)["sha256"] == upload.sha256


def test_a_new_document_replaces_the_old_one(app, make_host):
    host = make_host(approved=False)
    actor = Actor(host.id, "host")
    vetting.attach_document(actor, "lagfart.pdf", PDF)
    first = db.session.get(HostProfile, host.id).document_id
    vetting.attach_document(actor, "karta.png", PNG)
    profile = db.session.get(HostProfile, host.id)
    db.session.refresh(profile)
    assert profile.document_id != first and profile.document_original_name == "karta.png"
    assert db.session.scalar(select(func.count(Upload.id))) == 1  # the old document is not kept
    document = vetting.document_for(actor, host.id)
    assert (document.data, document.content_type, document.filename) == (PNG, "image/png", "karta.png")


def test_the_size_limit_and_the_content_check_hold(app, make_host):
    actor = Actor(make_host(approved=False).id, "host")
    with pytest.raises(ValidationFailed):
        vetting.attach_document(actor, "stor.pdf", PDF + b"0" * (5 * 1024 * 1024))
    with pytest.raises(ValidationFailed):
        vetting.attach_document(actor, "fel.png", PDF)
    assert db.session.scalar(select(func.count(Upload.id))) == 0


def test_the_database_refuses_a_row_whose_size_disagrees_with_its_data(app):
    from sqlalchemy.exc import IntegrityError
    with pytest.raises(IntegrityError):
        db.session.execute(Upload.__table__.insert().values(
            kind="vetting_document", filename="x.pdf", content_type="application/pdf", size_bytes=3,
            sha256="0" * 64, data=b"four", created_at=func.now()))
    db.session.rollback()


def test_only_the_host_and_admins_may_fetch_a_document(app, make_host, make_admin):
    host = make_host(approved=False)
    vetting.attach_document(Actor(host.id, "host"), "lagfart.pdf", PDF)
    other = make_host()
    with pytest.raises(NotFound):
        vetting.document_for(Actor(other.id, "host"), host.id)
    assert vetting.document_for(Actor(make_admin().id, "admin"), host.id).data == PDF


# --- the migration: files on disk move into the table -------------------------------------------------------------

MIGRATION = "0017_uploads_in_database"


def _previous_revision() -> str:
    """The revision this migration follows (read from the script, so a re-chained history still works)."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory
    config = AlembicConfig(str(ROOT / "migrations" / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    previous = ScriptDirectory.from_config(config).get_revision(MIGRATION).down_revision
    assert isinstance(previous, str)
    return previous


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """A database with no schema yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrating.db'}"
        return
    from tests.live_server import PG_ADMIN_URL, postgres_reachable
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable here (its tests are mandatory with CI=true).")
    import uuid
    name = f"sangplats_uploads_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def _host_with_file(conn, n: int, document_name: str | None, original: str | None, mime: str | None) -> None:
    conn.execute(text(
        "INSERT INTO users (id, email, password_hash, name, role, locale, created_at, session_version, "
        "token_version) "
        "VALUES (:id, :email, 'x', :name, 'host', 'sv', CURRENT_TIMESTAMP, 1, 1)"),
        {"id": n, "email": f"host{n}@example.se", "name": f"Värd {n}"})
    conn.execute(text(
        "INSERT INTO host_profiles (user_id, legal_name, phone, address, postal_code, right_to_rent, "
        "vetting_status, strikes, submitted_at, calendar_token, document_name, document_mime, "
        "document_original_name) VALUES (:id, 'V AB', '+46 498 123 456', 'Gatan 1', '621 56', :yes, 'pending', 0, "
        "CURRENT_TIMESTAMP, :token, :document, :mime, :original)"),
        {"id": n, "yes": True, "token": f"token-{n}", "document": document_name, "mime": mime, "original": original})


def test_the_migration_moves_documents_on_disk_into_the_table_and_reports_missing_ones(empty_database, tmp_path,
                                                                                        capfd):
    from flask_migrate import downgrade, upgrade
    folder = tmp_path / "old-uploads"
    folder.mkdir()
    (folder / "aaaa.pdf").write_bytes(PDF)
    (folder / "bbbb.png").write_bytes(PNG)
    migrating = create_app("testing", {"SQLALCHEMY_DATABASE_URI": empty_database, "UPLOAD_DIR": str(folder)})
    with migrating.app_context():
        upgrade(directory=str(ROOT / "migrations"), revision=_previous_revision())
        with db.engine.begin() as conn:
            _host_with_file(conn, 1, "aaaa.pdf", "lagfart.pdf", "application/pdf")
            _host_with_file(conn, 2, "bbbb.png", "karta.png", "image/png")
            _host_with_file(conn, 3, "gone.pdf", "borta.pdf", "application/pdf")  # the file is not on this disk
            _host_with_file(conn, 4, None, None, None)
        capfd.readouterr()
        upgrade(directory=str(ROOT / "migrations"), revision=MIGRATION)  # `flask db upgrade` logs to stderr
        reports = capfd.readouterr().err
        assert "moved 2 vetting document(s)" in reports, reports
        assert "host 3" in reports and "gone.pdf" in reports, reports
        with db.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT p.user_id, p.document_original_name, u.content_type, u.size_bytes, u.sha256, u.data "
                "FROM host_profiles p LEFT JOIN uploads u ON u.id = p.document_id ORDER BY p.user_id")).all()
        by_host = {row[0]: row[1:] for row in rows}
        assert by_host[1][1:] == ("application/pdf", len(PDF), hashlib.sha256(PDF).hexdigest(), PDF)
        assert by_host[2][1:] == ("image/png", len(PNG), hashlib.sha256(PNG).hexdigest(), PNG)
        assert by_host[3] == ("borta.pdf", None, None, None, None)  # reported, the host uploads it again
        assert by_host[4] == (None, None, None, None, None)
        assert (folder / "aaaa.pdf").exists()  # the files stay until the operator removes the folder

        # And back: the documents are written to UPLOAD_DIR again under the profile's document_name.
        (folder / "aaaa.pdf").unlink()
        downgrade(directory=str(ROOT / "migrations"), revision=_previous_revision())
        with db.engine.connect() as conn:
            names = dict(conn.execute(text("SELECT user_id, document_name FROM host_profiles")).all())
        assert (folder / names[1]).read_bytes() == PDF and names[3] is None
        db.engine.dispose()
