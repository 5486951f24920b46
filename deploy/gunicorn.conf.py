"""gunicorn's settings for Sängplats: `gunicorn -c deploy/gunicorn.conf.py wsgi:app` (from the project folder).

Environment (all optional): GUNICORN_BIND (default 127.0.0.1:8000, behind the TLS proxy), WEB_CONCURRENCY (worker
processes, default 2 × cores + 1), GUNICORN_THREADS (threads per worker, default 4), LOG_LEVEL (default info),
PROMETHEUS_MULTIPROC_DIR (where the workers' metrics meet, default <tmp>/sangplats-metrics; give each gunicorn on a
machine its own). Command-line flags override these.

Logs: JSON lines, the access log on stdout (one line per request, with its X-Request-ID, route and user id) and the
app's and gunicorn's own log on stderr; journald or the container runtime collects both.

Timeouts: a worker silent for `timeout` seconds is killed and replaced. A Stripe call gives up well inside it
(app/services/stripe_gateway.py: at most 2 × STRIPE_TIMEOUT_SECONDS + 0.5 s, 20.5 s by default;
tests/test_observability.py holds the two together).
"""
import os
import tempfile
from pathlib import Path

# Before anything imports prometheus_client: it picks its multiprocess mode from this variable when first imported.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # unset or empty
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(tempfile.gettempdir(), "sangplats-metrics")

bind = os.environ.get("GUNICORN_BIND") or "127.0.0.1:8000"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1) + 1)
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
timeout = 30
graceful_timeout = 30  # SIGTERM: requests in flight get this long to finish
keepalive = 5
max_requests = 5000  # a worker is replaced after so many requests (memory stays bounded)
max_requests_jitter = 500

LOG_LEVEL = (os.environ.get("LOG_LEVEL") or "info").upper()
loglevel = LOG_LEVEL.lower()
accesslog = "-"
errorlog = "-"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": LOG_LEVEL, "handlers": ["json"]},
    "loggers": {
        "gunicorn.error": {"level": LOG_LEVEL, "handlers": ["json"], "propagate": False, "qualname": "gunicorn.error"},
        "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False,
                            "qualname": "gunicorn.access"},
    },
    "handlers": {
        "json": {"()": "jsonlog.JsonStderrHandler"},
        "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stdout"},
    },
    "formatters": {"access": {"()": "jsonlog.AccessJsonFormatter"}},
}


def on_starting(server):
    """The metrics folder exists and holds no counts of processes that are gone (a new start counts from zero;
    a `flask worker` still running on this machine keeps its file)."""
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.glob("*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)


def child_exit(server, worker):
    """A worker that ended: prometheus-client drops its live gauges (its counters stay in the sums)."""
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
