"""A real server for tests and the benchmark: migrated databases and gunicorn on a free port.

Used by tests/test_concurrency.py and by bench/rush.py (as `tests.live_server`). Nothing here
mocks anything: the databases are real SQLite files and real PostgreSQL databases, and the
server is gunicorn with sync workers serving `wsgi:app`, exactly as in production.
"""
from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"


def postgres_reachable() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # any connection failure means "not reachable"
        return False


def migrate(url: str) -> None:
    """Create the schema at `url` with the project's migrations (what `flask db upgrade` does)."""
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """A new, migrated PostgreSQL database, dropped afterwards (open connections are ended first)."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


class GunicornServer:
    """`gunicorn wsgi:app` with N sync workers on 127.0.0.1:<free port>, against `database_url`.

    With `config_file` (deploy/gunicorn.conf.py) gunicorn takes its settings from that file instead (only the address
    and the number of workers are given on the command line); with `cwd` it runs in that folder (another machine's
    working folder), importing the app from the project."""

    def __init__(self, database_url: str, *, workers: int = 4, log_path: Path | None = None,
                 extra_env: dict | None = None, startup_timeout: float = 60.0, config_file: Path | None = None,
                 cwd: Path | None = None):
        self.database_url = database_url
        self.workers = workers
        self.port = free_port()
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.startup_timeout = startup_timeout
        self.config_file = config_file
        self.cwd = cwd
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GunicornServer:
        env = dict(os.environ)
        env.update({
            "DATABASE_URL": self.database_url, "APP_ENV": "testing", "SECRET_KEY": "live-server-" + uuid.uuid4().hex,
            "RATELIMIT_STORAGE_URI": "memory://", "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        self._log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        executable = str(GUNICORN) if GUNICORN.exists() else None
        command = ([executable] if executable else [sys.executable, "-m", "gunicorn"])
        if self.config_file:
            command += ["-c", str(self.config_file), "wsgi:app", "--pythonpath", str(ROOT),
                        "--workers", str(self.workers), "--bind", f"127.0.0.1:{self.port}"]
        else:
            command += ["wsgi:app", "--workers", str(self.workers), "--worker-class", "sync",
                        "--bind", f"127.0.0.1:{self.port}", "--backlog", "2048", "--timeout", "60",
                        "--log-level", "warning"]
        self.process = subprocess.Popen(command, cwd=self.cwd or ROOT, env=env, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; log: {self.log_path}")
            if _healthy(self.port):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer /healthz within {self.startup_timeout} s; log: {self.log_path}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM to the master (our own child): graceful shutdown of its workers
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None

    def log_tail(self, chars: int = 4000) -> str:
        if self.log_path and Path(self.log_path).exists():
            return Path(self.log_path).read_text("utf-8", errors="replace")[-chars:]
        return ""

    def __enter__(self) -> GunicornServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def race(racers: list[tuple[Callable, Callable]]) -> list[tuple[int, object]]:
    """Release racers together: each is (prepare(session), send(session, prepared) -> result), run in its own
    thread with its own requests.Session; all prepare (connect, fetch a form), then a barrier lets all send
    at once. A send that raises a requests error gives (0, repr(error))."""
    import requests
    barrier = threading.Barrier(len(racers))
    results: list = [None] * len(racers)

    def run(i: int, prepare: Callable, send: Callable) -> None:
        with requests.Session() as session:
            prepared = prepare(session)
            barrier.wait(timeout=60)
            try:
                results[i] = send(session, prepared)
            except requests.RequestException as error:
                results[i] = (0, repr(error))

    threads = [threading.Thread(target=run, args=(i, *r), daemon=True) for i, r in enumerate(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a racer never finished"
    return results


def race_json(calls: list[tuple[str, str, str, dict]]) -> list[tuple[int, dict]]:
    """Send each (method, url, bearer token, JSON body) from its own connection, all released at once by a barrier;
    each answer is (status, JSON payload), (status, {"raw": text}) when not JSON, or (0, {"error": ...})."""
    def racer(method: str, url: str, token: str, body: dict) -> tuple[Callable, Callable]:
        def prepare(session) -> None:
            session.headers["Authorization"] = f"Bearer {token}"
            session.get(url.split("/api/")[0] + "/healthz", timeout=30)  # connect before the start

        def send(session, _prepared) -> tuple[int, dict]:
            response = session.request(method, url, json=body, timeout=60)
            try:
                return response.status_code, response.json()
            except ValueError:
                return response.status_code, {"raw": response.text[:300]}
        return prepare, send

    answers = race([racer(*call) for call in calls])
    return [(0, {"error": answer[1]}) if answer[0] == 0 else answer for answer in answers]


class RaceWorld:
    """The migrated database, the app (for seeding through the services) and the server."""

    def __init__(self, url: str, app, server: GunicornServer):
        self.url = url
        self.app = app
        self.server = server
        self.engine = create_engine(url)
        self.counter = 0

    def next(self) -> int:
        self.counter += 1
        return self.counter

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params):
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
