"""A real SMTP server for the mail tests (aiosmtpd on a free loopback port): plain, with a login, with STARTTLS or
with TLS from the first byte, and a self-signed certificate for 127.0.0.1 made with the openssl command."""
from __future__ import annotations

import asyncio
import email
import re
import socket
import ssl
import subprocess  # nosec B404 - runs the openssl command with a fixed argument list
import threading
import time
from collections import Counter
from email import policy
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """An aiosmtpd handler keeping every message it receives (thread-safe: the server runs in its own thread)."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self._lock = threading.Lock()
        self.delay = 0.0  # seconds each message takes to be accepted (a slow server)
        self.receiving = threading.Event()  # set when the first message's DATA begins

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.receiving.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.messages.append(message)
        return "250 Message accepted"

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]

    def outbox_ids(self) -> Counter:
        """How often each outbox message arrived, by its id (the Message-ID says `...outbox<id>@domain`)."""
        with self._lock:
            ids = [re.search(r"outbox(\d+)@", m["Message-ID"] or "") for m in self.messages]
        return Counter(int(match.group(1)) for match in ids if match)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate (and its key) for 127.0.0.1 and localhost, valid for a day."""
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",  # nosec B603 B607
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


class SmtpServer:
    """aiosmtpd on 127.0.0.1:port. `login=(user, password)` offers AUTH (and requires it); `starttls` or `tls`
    with `certificate=(cert, key)` requires STARTTLS before anything else, or speaks TLS from the first byte."""

    def __init__(self, port: int | None = None, *, login: tuple[str, str] | None = None, security: str = "none",
                 certificate: tuple[Path, Path] | None = None):
        self.port = port or free_port()
        self.inbox = Inbox()
        self.login = login
        self.security = security
        self.certificate = certificate
        self.logins: list[str] = []  # the user names that logged in
        self.controller = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and self.login is not None
              and (auth_data.login.decode(), auth_data.password.decode()) == self.login)
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # a failure answers 535

    def start(self) -> SmtpServer:
        options: dict = {}
        context = None
        if self.security != "none":
            assert self.certificate, "STARTTLS and TLS need a certificate"
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*map(str, self.certificate))
        if self.security == "starttls":
            options.update(tls_context=context, require_starttls=True)
        if self.login is not None:
            # With TLS from the first byte aiosmtpd does not see the TLS (it checks for STARTTLS): AUTH is offered
            # as on a plain connection, which is then a TLS one.
            options.update(authenticator=self._authenticate, auth_required=True,
                           auth_require_tls=self.security == "starttls")
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port,
                                     ssl_context=context if self.security == "tls" else None, **options)
        self.controller.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # poll until it accepts connections
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the SMTP server did not start")

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
