"""Deterministic interleavings for race tests: pause one side between its read and its write.

`Pause` listens to the engine's `after_cursor_execute` and holds the named thread after its first
statement that matches, until released; `run_side` runs a service in its own thread and app
context; `interleave` runs the paused side up to its read, the other side until it finishes or
waits on a lock the paused side holds, then lets the paused side go. No switch in the app.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import create_engine, event, text

from app.extensions import db


class Pause:
    """Hold one thread after its first statement that matches, until released."""

    def __init__(self, engine, matches):
        self.engine, self.matches = engine, matches
        self.thread_name = None
        self.reached, self.release = threading.Event(), threading.Event()
        event.listen(engine, "after_cursor_execute", self._after)

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        if threading.current_thread().name != self.thread_name or self.reached.is_set():
            return
        if self.matches(" ".join(statement.split())):
            self.reached.set()
            assert self.release.wait(30), "the paused side was never released"

    def remove(self):
        self.release.set()
        event.remove(self.engine, "after_cursor_execute", self._after)


def waiting_on_lock(url: str, backend: str) -> bool:
    """Whether some connection of this PostgreSQL database waits on a row lock (never on SQLite)."""
    if backend != "postgresql":
        return False
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")))
    finally:
        engine.dispose()


def run_side(app, name: str, results: dict, errors: list, fn: Callable) -> threading.Thread:
    """Run `fn` in a thread named `name` with its own app context; its return value lands in results[name]."""
    def target():
        with app.app_context():
            try:
                results[name] = fn()
            except BaseException as exc:  # reported by the main thread
                errors.append((name, exc))
            finally:
                db.session.remove()
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def interleave(app, first: tuple[str, Callable], second: tuple[str, Callable], matches: Callable[[str], bool]
               ) -> tuple[dict, list, str]:
    """Run `first` until its first statement that `matches`, then `second` until it finishes or waits on a
    lock, then let `first` go. Returns (results by side, errors as (side, exception), how it went)."""
    url, backend = app.config["SQLALCHEMY_DATABASE_URI"], db.engine.dialect.name
    db.session.remove()  # the main thread holds nothing while the two sides run
    pause = Pause(db.engine, matches)
    pause.thread_name = first[0]
    results: dict = {}
    errors: list = []
    try:
        threads = [run_side(app, first[0], results, errors, first[1])]
        assert pause.reached.wait(30), f"the {first[0]} side never reached its read {errors}"
        threads.append(run_side(app, second[0], results, errors, second[1]))
        deadline = time.monotonic() + 30
        if backend == "sqlite":
            threads[1].join(1.5)  # still running: it waits at BEGIN IMMEDIATE for the first one's write lock
        while backend != "sqlite" and threads[1].is_alive() and not waiting_on_lock(url, backend):
            assert time.monotonic() < deadline, f"the {second[0]} side neither finished nor waited on a lock"
            time.sleep(0.05)
        how = f"{second[0]} finished" if not threads[1].is_alive() else f"{second[0]} waiting on {first[0]}"
        pause.release.set()
        for thread in threads:
            thread.join(60)
            assert not thread.is_alive(), f"{thread.name} side hung"
    finally:
        pause.remove()
    return results, errors, f"{backend}, {first[0]} paused after its read, released with {how}"
