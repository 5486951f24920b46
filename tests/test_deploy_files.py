"""The deployment files (issue 14): systemd units, gunicorn's settings, the container files, the release step, and a
backup that restores into a fresh database with every contract's hash intact."""
from __future__ import annotations

import configparser
import hashlib
import os
import runpy
import shutil
import subprocess  # nosec B404 - runs the project's own scripts and the machine's PostgreSQL tools
import uuid
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text

from app import create_app
from app.extensions import db
from app.models import Contract
from tests.live_server import IN_CI, PG_ADMIN_URL, postgres_reachable

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = {
    "sangplats-app.service": "/srv/sangplats/.venv/bin/gunicorn -c deploy/gunicorn.conf.py wsgi:app",
    "sangplats-worker.service": "/srv/sangplats/.venv/bin/flask --app wsgi worker",
}


def _needed(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if IN_CI:
            pytest.fail(f"{tool} is not installed, and CI=true makes this test mandatory.")
        pytest.skip(f"{tool} is not installed here.")
    return path


# --- systemd --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_a_systemd_unit_has_what_it_needs(unit):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys keep their case
    parser.read(DEPLOY / unit, encoding="utf-8")
    service = parser["Service"]
    assert service["ExecStart"] == UNITS[unit]
    assert service["User"] == "sangplats" and service["WorkingDirectory"] == "/srv/sangplats"
    assert service["EnvironmentFile"] == "/etc/sangplats/sangplats.env"
    assert service["Environment"] == "PROMETHEUS_MULTIPROC_DIR=/run/sangplats"
    assert service["Restart"] in ("on-failure", "always")
    assert parser["Install"]["WantedBy"] == "multi-user.target"
    assert "network-online.target" in parser["Unit"]["After"]


def test_systemd_analyze_verify_finds_nothing_wrong_with_the_units(tmp_path):
    """The units as installed, with /srv/sangplats standing for this checkout (verify checks that ExecStart exists)."""
    tool = _needed("systemd-analyze")
    for unit in UNITS:
        text_ = (DEPLOY / unit).read_text("utf-8").replace("/srv/sangplats", str(ROOT))
        (tmp_path / unit).write_text(text_, "utf-8")
    result = subprocess.run([tool, "verify", *(str(tmp_path / unit) for unit in UNITS)],  # nosec B603
                            capture_output=True, text=True, timeout=60)
    print(f"systemd-analyze verify: exit {result.returncode}; {result.stdout}{result.stderr}".strip())
    assert result.returncode == 0, result.stderr
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if any(word in line for word in ("Unknown", "ignoring", "not executable", "Failed", "Invalid"))]
    assert not complaints, complaints


# --- gunicorn -------------------------------------------------------------------------------------------------------


@pytest.fixture
def gunicorn_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))  # the file only sets it when unset
    return runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))


def test_gunicorn_settings_log_every_request_as_json_and_recycle_workers(gunicorn_settings):
    s = gunicorn_settings
    assert s["worker_class"] == "gthread" and s["threads"] >= 1 and s["workers"] >= 1
    assert s["timeout"] == 30 and s["graceful_timeout"] >= 20
    assert s["accesslog"] == "-" and s["errorlog"] == "-"
    handlers = s["logconfig_dict"]["handlers"]
    assert handlers["json"]["()"] == "jsonlog.JsonStderrHandler"
    assert s["logconfig_dict"]["formatters"]["access"]["()"] == "jsonlog.AccessJsonFormatter"
    assert s["logconfig_dict"]["loggers"]["gunicorn.access"]["handlers"] == ["access"]


def test_gunicorn_start_clears_the_counts_of_processes_that_are_gone(gunicorn_settings, tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    gone, alive = folder / "counter_999999999.db", folder / f"counter_{os.getpid()}.db"
    gone.write_bytes(b"x")
    alive.write_bytes(b"x")
    gunicorn_settings["on_starting"](None)
    assert not gone.exists() and alive.exists()
    (folder / "gauge_livesum_4242.db").write_bytes(b"x")
    gunicorn_settings["child_exit"](None, type("Worker", (), {"pid": 4242})())
    assert not (folder / "gauge_livesum_4242.db").exists()


def test_gunicorn_accepts_the_settings_file(tmp_path):
    env = {**os.environ, "APP_ENV": "development", "DATABASE_URL": f"sqlite:///{tmp_path / 'check.db'}",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", str(DEPLOY / "gunicorn.conf.py"),  # nosec B603
                             "--check-config", "wsgi:app"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


# --- containers -----------------------------------------------------------------------------------------------------


def test_compose_runs_the_database_redis_release_app_worker_and_a_proxy():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))
    services = compose["services"]
    assert {"db", "redis", "release", "app", "worker", "proxy"} <= set(services)
    assert services["worker"]["command"] == ["flask", "--app", "wsgi", "worker"]
    assert services["release"]["command"] == ["sh", "deploy/release.sh"]
    assert services["app"]["depends_on"]["release"]["condition"] == "service_completed_successfully"
    assert services["app"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert services["app"]["environment"]["RATELIMIT_STORAGE_URI"].startswith("redis://")
    dockerfile = (DEPLOY / "Dockerfile").read_text("utf-8")
    assert 'CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"]' in dockerfile
    assert "USER sangplats" in dockerfile
    assert ".venv" in (ROOT / ".dockerignore").read_text("utf-8").split()


# --- the release step -----------------------------------------------------------------------------------------------


def test_the_release_script_compiles_the_translations_and_migrates(tmp_path):
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory
    database = tmp_path / "release.db"
    env = {**os.environ, "APP_ENV": "development", "DATABASE_URL": f"sqlite:///{database}"}
    result = subprocess.run(["sh", str(DEPLOY / "release.sh")], cwd=tmp_path, env=env, capture_output=True,  # nosec B603 B607
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "release: translations compiled" in result.stdout
    config = AlembicConfig(str(ROOT / "migrations" / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
    engine.dispose()
    for po in (ROOT / "app" / "translations").glob("*/LC_MESSAGES/messages.po"):
        assert po.with_suffix(".mo").stat().st_mtime >= po.stat().st_mtime


# --- backups --------------------------------------------------------------------------------------------------------


RESTORE_CHECK = ("SELECT count(*) FROM contracts "
                 "WHERE encode(sha256(convert_to(snapshot, 'UTF8')), 'hex') <> sha256")


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_pg_dump_restores_into_a_fresh_database_with_every_contract_intact(app, make_booking, tmp_path):
    pg_dump, pg_restore = _needed("pg_dump"), _needed("pg_restore")
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable here.")
    bookings = [make_booking() for _ in range(3)]
    made = {c.number: c.sha256 for c in db.session.scalars(db.select(Contract))}
    assert len(made) == len(bookings)
    source = db.engine.url.render_as_string(hide_password=False)
    db.session.remove()

    dump = tmp_path / "sangplats.dump"
    subprocess.run([pg_dump, "--format=custom", "--no-owner", "--file", str(dump), _plain(source)],  # nosec B603
                   check=True, capture_output=True, timeout=120)
    name = f"sangplats_restore_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    restored = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        result = subprocess.run([pg_restore, "--no-owner", "--exit-on-error", "--dbname", _plain(restored),  # nosec B603
                                 str(dump)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        engine = create_engine(restored)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT number, snapshot, sha256 FROM contracts ORDER BY number")).all()
            assert {number: sha for number, _, sha in rows} == made
            for number, snapshot, sha in rows:
                assert hashlib.sha256(snapshot.encode("utf-8")).hexdigest() == sha, number
            # The README's check after a restore, in SQL: no contract whose snapshot hashes to anything else.
            assert conn.execute(text(RESTORE_CHECK)).scalar() == 0
        # The append-only guards came back with the tables.
        with pytest.raises(Exception, match="append-only|immutable|not allowed|refuse"), engine.begin() as conn:
            conn.execute(text("UPDATE contracts SET sha256 = 'forged'"))
        engine.dispose()

        restored_app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": restored})
        with restored_app.app_context():
            client = restored_app.test_client()
            for number, sha in made.items():
                answer = client.get(f"/api/v1/contracts/verify?number={number}&sha256={sha}")
                assert answer.status_code == 200 and answer.get_json()["valid"] is True, answer.get_json()
                page = client.get(f"/contracts/verify?number={number}&sha256={sha}")
                assert "Äkta och oförändrat" in page.get_data(as_text=True)
            assert client.get(f"/api/v1/contracts/verify?number={number}&sha256={'0' * 64}").get_json()[
                "valid"] is False
            db.session.remove()
            db.engine.dispose()
        print(f"backup: pg_dump of {len(made)} contracts restored into {name}; every SHA-256 recomputed and "
              "verified through /contracts/verify")
    finally:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
