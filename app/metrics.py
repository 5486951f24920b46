"""Prometheus metrics (prometheus-client): requests, bookings, refusals, job runs; the outbox is read at each scrape.

Anything in the app may count through the helpers here, e.g. a periodic job: `metrics.job_ran("expire_holds", ok)`.
`GET /metrics` (app/observability.py) serves them to `Authorization: Bearer $METRICS_TOKEN`.

Under gunicorn each worker is its own process: with PROMETHEUS_MULTIPROC_DIR set (deploy/gunicorn.conf.py sets it
before any worker starts) every process writes its counts to files there and a scrape adds them up; without it
(the development server, the tests) the counts live in this process. Counting never fails a request: a count that
cannot be written (the folder is gone or not writable) is logged once and dropped.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

log = logging.getLogger(__name__)
_complained = False

# Every metric has labels, so importing this module writes nothing: a process's file in PROMETHEUS_MULTIPROC_DIR
# appears with its first count (a `flask` command that counts nothing leaves none).
REQUESTS = Counter("sangplats_http_requests", "HTTP requests answered, by endpoint, method and status",
                   ["endpoint", "method", "status"])
REQUEST_SECONDS = Histogram("sangplats_http_request_duration_seconds", "Time to answer an HTTP request, by method",
                            ["method"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
BOOKINGS = Counter("sangplats_bookings", "Bookings made (counted when their transaction commits), by payment method",
                   ["payment_method"])
REFUSALS = Counter("sangplats_refusals", "Requests a rule refused (the API's problem codes, a page's refusal), by "
                   "code", ["code"])
JOB_RUNS = Counter("sangplats_job_runs", "Runs of the periodic jobs, by job and outcome (ok or failed)",
                   ["job", "outcome"])


def _count(update: Callable[[], None]) -> None:
    global _complained
    try:
        folder = multiprocess_dir()
        if folder and not os.path.isdir(folder):
            os.makedirs(folder, exist_ok=True)
        update()
    except Exception:  # a count is never worth a failed request or job
        if not _complained:
            _complained = True
            log.exception("metrics: a count could not be written (PROMETHEUS_MULTIPROC_DIR=%s)", multiprocess_dir())


def request_answered(endpoint: str | None, method: str, status: int, seconds: float) -> None:
    def update() -> None:
        REQUESTS.labels(endpoint or "unmatched", method, str(status)).inc()
        REQUEST_SECONDS.labels(method).observe(seconds)
    _count(update)


def booking_made(payment_method: str) -> None:
    _count(lambda: BOOKINGS.labels(payment_method).inc())


def refused(code: str) -> None:
    _count(lambda: REFUSALS.labels(code).inc())


def job_ran(name: str, ok: bool) -> None:
    """Count one run of a periodic job (the worker's jobs call it after each run)."""
    _count(lambda: JOB_RUNS.labels(name, "ok" if ok else "failed").inc())


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or None


class _Outbox(Collector):
    def __init__(self, counts: Mapping[str, int]):
        self.counts = counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("sangplats_outbox_messages", "E-mail in the outbox, by status (pending: waiting to "
                                  "be sent; failed: given up)", labels=["status"])
        for status, count in sorted(self.counts.items()):
            gauge.add_metric([status], count)
        yield gauge


def exposition(outbox: Mapping[str, int]) -> tuple[bytes, str]:
    """The text a scrape answers: every process's counts (or this process's), and the outbox's size now."""
    folder = multiprocess_dir()
    if folder:
        from prometheus_client import multiprocess
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=folder)
        counts = generate_latest(registry)
    else:
        counts = generate_latest(REGISTRY)
    now = CollectorRegistry()
    now.register(_Outbox(outbox))
    return counts + generate_latest(now), CONTENT_TYPE_LATEST
