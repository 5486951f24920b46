"""Start localstripe (a stateful fake Stripe on loopback) and register our webhook with it.

Used by `make run` (through tools/run.py) and by the test fixtures; never by production code. localstripe's own
command binds every interface; `start` runs its server module in a process of its own bound to 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess  # nosec B404 - starts our own localstripe binary with a fixed argument list
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def is_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(base: str, timeout: float = 30.0) -> None:
    """Poll until localstripe answers an authenticated API call (no fixed sleep)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            response = requests.get(f"{base}/v1/customers", auth=("sk_test_ready", ""), timeout=1)
            if response.status_code == 200:
                return
        except requests.RequestException as exc:
            last_error = exc
        time.sleep(0.05)
    raise RuntimeError(f"localstripe did not come up at {base}: {last_error}")


def register_webhook(base: str, url: str, secret: str, name: str = "sangplats") -> None:
    response = requests.post(f"{base}/_config/webhooks/{name}", data={"url": url, "secret": secret}, timeout=5)
    response.raise_for_status()


# localstripe's `start()` with one change: 127.0.0.1 instead of every interface (and always from scratch).
SERVE_ON_LOOPBACK = """
import logging, sys
from aiohttp import web
from localstripe.server import app
access = logging.getLogger("aiohttp.access")
access.setLevel(logging.DEBUG)
access.addHandler(logging.StreamHandler())
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=access, print=None)
"""


def start(port: int, *, background: bool = False, log_path: Path | None = None) -> subprocess.Popen:
    """Start localstripe from this virtualenv on 127.0.0.1:port (loopback only) and wait until it answers."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(  # nosec B603 - fixed argv, no shell, no user input
        [sys.executable, "-c", SERVE_ON_LOOPBACK, str(port)], stdout=log, stderr=subprocess.STDOUT,
        start_new_session=background, cwd=str(ROOT / "instance") if (ROOT / "instance").is_dir() else None,
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}")
    except RuntimeError:
        process.terminate()
        raise
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--webhook", required=True, help="URL that localstripe posts events to")
    parser.add_argument("--background", action="store_true")
    args = parser.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    secret = os.environ.get("STRIPE_WEBHOOK_SECRET", "whsec_sangplats_dev")
    if is_listening(args.port):
        print(f"localstripe already listening at {base}")
    else:
        (ROOT / "instance").mkdir(exist_ok=True)
        process = start(args.port, background=args.background, log_path=ROOT / "instance" / "localstripe.log")
        (ROOT / "instance" / "localstripe.pid").write_text(str(process.pid))
        print(f"localstripe started at {base} (pid {process.pid}, log instance/localstripe.log)")
    register_webhook(base, args.webhook, secret)
    print(f"Webhook {args.webhook} registered with localstripe")


if __name__ == "__main__":
    main()
