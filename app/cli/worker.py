"""`flask --app wsgi worker`: every periodic job until SIGTERM or Ctrl-C (one process; run as many as you like).

APScheduler (its BackgroundScheduler) keeps the timetable: each job of `app.services.jobs.PERIODIC` every
WORKER_TICK_SECONDS or WORKER_STRIPE_SECONDS, never two runs of one job at once in a process (max_instances=1),
late runs merged into one (coalesce), each in a thread of its own with its own app context and database session,
so a slow Stripe round never holds up lapsed holds or the outbox. Safety between workers is the jobs' own
(row locks, advisory locks), not the scheduler's. A heartbeat job renews this worker's row for /healthz.

SIGTERM or SIGINT: no new job starts, the running ones finish, the heartbeat row is removed, exit status 0.
"""
from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
from datetime import UTC, datetime
from typing import Any

import click
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask, current_app

from app.extensions import db
from app.services import health
from app.services.errors import database_unreachable
from app.services.jobs import PERIODIC, PeriodicJob

log = logging.getLogger("sangplats.worker")


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0][:300]


class Worker:
    """The jobs on APScheduler's timetable, and the switch that stops them."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.stopping = threading.Event()
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(len(PERIODIC) + 1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )

    def _in_context(self, what: str, action: Any) -> None:
        if self.stopping.is_set():  # queued before the stop: it does not start
            return
        with self.app.app_context():
            try:
                action()
            except Exception as error:  # a failed round is logged; the next round tries again
                db.session.rollback()
                if database_unreachable(error):
                    log.error("%s: the database cannot be reached: %s", what, _first_line(error))
                else:
                    log.exception("%s failed", what)

    def run_job(self, job: PeriodicJob) -> None:
        def action() -> None:
            said = job.run_once()
            if said:
                log.info("%s: %s", job.name, said)
        self._in_context(job.name, action)

    def beat(self) -> None:
        self._in_context("heartbeat", lambda: health.beat(self.name))

    def start(self) -> None:
        config = self.app.config
        start = datetime.now(UTC)
        for job in PERIODIC:
            self.scheduler.add_job(self.run_job, "interval", args=[job], id=job.name,
                                   seconds=float(config[job.every]), next_run_time=start)
        beat_every = min(float(config["WORKER_TICK_SECONDS"]), health.LATE_AFTER.total_seconds() / 4)
        self.scheduler.add_job(self.beat, "interval", id="heartbeat", seconds=beat_every)
        self.scheduler.start()

    def stop(self, *_signal: Any) -> None:
        """The signal handler: only raise the flag; the main thread does the rest."""
        self.stopping.set()

    def wait_and_shut_down(self) -> None:
        while not self.stopping.wait(timeout=1):
            pass
        log.info("worker %s stopping: letting the running jobs finish", self.name)
        self.scheduler.shutdown(wait=True)
        with self.app.app_context():
            try:
                health.stopped(self.name)
            except Exception as error:  # its row goes stale and is forgotten; the jobs are done either way
                db.session.rollback()
                log.warning("worker %s could not remove its heartbeat: %s", self.name, _first_line(error))
        log.info("worker %s stopped", self.name)


@click.command("worker")
def worker_command() -> None:
    """Run every periodic job (holds and offers that lapse, reminders, the outbox, Stripe, refunds, payouts)
    until stopped (SIGTERM or Ctrl-C finish the running jobs first). Any number may run at once."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # its per-run lines and "still running" notes
    worker = Worker(current_app._get_current_object())  # type: ignore[attr-defined]  # the app behind the proxy
    health.beat(worker.name)  # a database that cannot be reached stops the start here, with one line
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    worker.start()
    click.echo(f"Worker {worker.name} running {len(PERIODIC)} jobs (every "
               f"{current_app.config['WORKER_TICK_SECONDS']:g} s / {current_app.config['WORKER_STRIPE_SECONDS']:g} s)"
               "; SIGTERM or Ctrl-C stops it.", err=True)
    worker.wait_and_shut_down()
