"""`make run`'s supervisor: localstripe on 127.0.0.1, one worker and the development server, stopped together.

Ctrl-C (SIGINT to the whole terminal group) or SIGTERM to this process alone stops all three: each child still
running gets SIGTERM and a moment to finish (the worker completes its running job), then SIGKILL. When one of
them exits by itself, the others are stopped too, so nothing is left listening behind a dead server.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess  # nosec B404 - starts this project's own programs with fixed argument lists
import sys
import threading
import time
from pathlib import Path

from tools.localstripe import ROOT, is_listening, register_webhook, start

STOP_TIMEOUT = 30.0


def _flask(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("flask")), "--app", "wsgi", *args]


def stop_all(children: dict[str, subprocess.Popen]) -> None:
    """SIGTERM to every child still running, then wait; SIGKILL for any that outlives STOP_TIMEOUT."""
    for process in children.values():
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for name, process in children.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop within {STOP_TIMEOUT:g} s: killed", file=sys.stderr)
            process.kill()
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=5000, help="the development server's port")
    parser.add_argument("--stripe-port", type=int, default=8420, help="localstripe's port")
    args = parser.parse_args()
    stripe_base = f"http://127.0.0.1:{args.stripe_port}"
    webhook = f"http://127.0.0.1:{args.port}/stripe/webhook"
    secret = os.environ.get("STRIPE_WEBHOOK_SECRET", "whsec_sangplats_dev")

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    children: dict[str, subprocess.Popen] = {}
    try:
        if is_listening(args.stripe_port):
            print(f"localstripe already listening at {stripe_base} (not started, not stopped here)")
        else:
            (ROOT / "instance").mkdir(exist_ok=True)
            children["localstripe"] = start(args.stripe_port, log_path=ROOT / "instance" / "localstripe.log")
        register_webhook(stripe_base, webhook, secret)
        children["worker"] = subprocess.Popen(_flask("worker"), cwd=ROOT)  # nosec B603
        children["server"] = subprocess.Popen(  # nosec B603
            _flask("run", "--host", "127.0.0.1", "--port", str(args.port)), cwd=ROOT)
        print(f"Sängplats at http://127.0.0.1:{args.port} (localstripe at {stripe_base}, log "
              "instance/localstripe.log; one worker); Ctrl-C stops all three.", flush=True)
        while not stop.wait(timeout=0.5):
            ended = [name for name, process in children.items() if process.poll() is not None]
            if ended:
                print(f"{', '.join(ended)} exited: stopping the rest", file=sys.stderr)
                break
    finally:
        stop_all(children)
    server = children.get("server")
    return 0 if stop.is_set() or server is None else (server.returncode or 0)


if __name__ == "__main__":
    sys.exit(main())
