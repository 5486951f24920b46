"""The worker as it runs for real: `flask --app wsgi worker` processes (two and four at once) on one PostgreSQL
database while many holds lapse, reminders fall due, the waiting list waits and much mail is queued; mail goes
to a real SMTP server (aiosmtpd) in this process. Also: two one-shot commands at once (the defects of issue 14),
and `make run` stopping everything it started.

Nothing here sleeps and hopes: every wait polls the database or the processes with a deadline.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess  # nosec B404 - starts the project's own commands
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text, update

from tests.helpers import FIRST_NIGHT, LAST_NIGHT, PASSWORD, YEAR, valid_organisation_number
from tests.live_server import IN_CI, ROOT, free_port, fresh_postgres_database, migrate, postgres_reachable
from tests.smtp_server import SmtpServer

pytestmark = pytest.mark.serial

FLASK = ROOT / ".venv" / "bin" / "flask"
DEADLINE_SECONDS = 120
STAY = (FIRST_NIGHT, FIRST_NIGHT + timedelta(days=1))
# Keys of the machine's environment a worker must not inherit (it gets its own below).
OWN_KEYS = ("APP_ENV", "SECRET_KEY", "DATABASE_URL", "RATELIMIT_STORAGE_URI", "BASE_URL", "TRUSTED_HOSTS",
            "MAIL_SERVER", "MAIL_PORT", "MAIL_USERNAME", "MAIL_PASSWORD", "MAIL_SECURITY", "MAIL_FROM",
            "STRIPE_API_BASE", "WORKER_TICK_SECONDS", "WORKER_STRIPE_SECONDS", "MAIL_OUTBOX_DIR")


@pytest.fixture(scope="module")
def postgres():
    if not postgres_reachable():
        if IN_CI:
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is not reachable, and CI=true makes its tests mandatory.")
        pytest.skip("PostgreSQL is not reachable here (its tests are mandatory with CI=true).")


def _env(url: str, tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in OWN_KEYS}
    env.update({
        "APP_ENV": "testing", "DATABASE_URL": url, "SECRET_KEY": "worker-test-" + uuid.uuid4().hex,
        "PYTHONUNBUFFERED": "1", "MAIL_OUTBOX_DIR": str(tmp_path / "mail"),
        # Nothing in these worlds pays by card; a Stripe call would be refused on this closed port at once.
        "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}",
    })
    env.update(extra)
    return env


class World:
    """The database, seeded through the services: one listing whose every bed is held by a card hold, and
    delegations waiting for a bed of the same stay."""

    def __init__(self, url: str, tmp_path: Path):
        from app import create_app
        self.url = url
        self.engine = create_engine(url)
        self.app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url, "MAIL_OUTBOX_DIR": str(tmp_path / "mail")})

    def seed(self, *, lapsing: int, reminding: int, waiting: int) -> None:
        from app.extensions import db
        from app.services import accounts, booking, delegations, listings, pricing, seasons, vetting, waitlist
        from app.services.base import Actor
        now = datetime.now(UTC)
        with self.app.app_context():
            admin = Actor(accounts.create_admin("admin@example.se", PASSWORD, "Admin").id, "admin")
            season = seasons.create_season(admin, {
                "year": YEAR, "name": f"Almedalsveckan {YEAR}", "first_night": FIRST_NIGHT, "last_night": LAST_NIGHT,
                "bookings_open_at": now - timedelta(days=1), "price_cap_ore": 90000, "max_increase_pct": 10,
                "strike_limit": 3, "hold_minutes": 15, "free_cancellation_until": FIRST_NIGHT - timedelta(days=60),
                "late_cancellation_refund_pct": 50, "max_open_holds": 1000, "max_beds_per_organisation": 100000})
            host_user = accounts.register_user("host@example.se", PASSWORD, "Värd", "host")
            host = Actor(host_user.id, "host")
            vetting.submit_profile(host, legal_name="Värd AB", phone="+46 498 123 456", address="Strandgatan 1",
                                   postal_code="621 56", right_to_rent=True)
            vetting.decide(admin, host_user.id, "approve", "checked")
            listing = listings.create_listing(host, title="Rum i Visby", description="Nära Almedalen.",
                                              address="Strandgatan 1", postal_code="621 56", walking_minutes=5)
            room = listings.add_room(host, listing.id, "Rum 1")
            beds = []
            for i in range(lapsing + reminding):
                bed = listings.add_bed(host, room.id, f"Säng {i + 1}", "single")
                pricing.set_price(host, bed.id, YEAR, 50000)
                beds.append(bed.id)
            listings.publish(host, listing.id, season.terms_version)
            coordinator = Actor(accounts.register_user("samordnare@example.se", PASSWORD, "Samordnare",
                                                       "coordinator").id, "coordinator")
            holder = delegations.create_delegation(coordinator, "Förening", valid_organisation_number(1))
            holds = [booking.create_booking(coordinator, delegation_id=holder.id, bed_ids=[bed], check_in=STAY[0],
                                            check_out=STAY[1], accept_contract=True, payment_method="card",
                                            now=now).id for bed in beds]
            self.lapsing, self.reminding = holds[:lapsing], holds[lapsing:]
            self.entries = []
            for i in range(waiting):
                delegation = delegations.create_delegation(coordinator, f"Väntande {i}",
                                                           valid_organisation_number(100 + i))
                self.entries.append(waitlist.join(coordinator, delegation_id=delegation.id, year=YEAR,
                                                  check_in=STAY[0], check_out=STAY[1], beds=1, now=now).id)
            db.session.remove()

    def the_moment(self, *, mails: int) -> None:
        """Everything falls due at once, in one transaction: the lapsing holds' time is up, the reminding ones
        expire in four minutes, and `mails` messages queued two minutes ago wait (their retry is already due by
        the schedule, so a worker must not take a message another is still sending)."""
        from app.extensions import db
        from app.models import Booking
        from app.services import mail
        from app.services.base import unit_of_work
        now = datetime.now(UTC)
        with self.app.app_context():
            with unit_of_work():
                db.session.execute(update(Booking).where(Booking.id.in_(self.lapsing))
                                   .values(expires_at=now - timedelta(minutes=1)))
                db.session.execute(update(Booking).where(Booking.id.in_(self.reminding))
                                   .values(expires_at=now + timedelta(minutes=4)))
                for i in range(mails):
                    mail.queue_email(f"gast{i}@example.se", f"Meddelande {i}", "Hej!", now=now - timedelta(minutes=2))
            db.session.remove()

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]

    def close(self) -> None:
        from app.extensions import db
        self.engine.dispose()
        with self.app.app_context():
            db.engine.dispose()


def _poll(what: str, condition, *, processes: list[subprocess.Popen] = (), logs: list[Path] = ()) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        dead = [p.returncode for p in processes if p.poll() is not None]
        if dead:
            pytest.fail(f"a worker exited ({dead}) while waiting for {what}: {_tails(logs)}")
        if time.monotonic() > deadline:
            pytest.fail(f"not done within {DEADLINE_SECONDS} s: {what}; {_tails(logs)}")
        time.sleep(0.1)


def _tails(logs) -> str:
    return " | ".join(Path(log).read_text(errors="replace")[-1500:] for log in logs if Path(log).exists())


def _stop(processes: list[subprocess.Popen]) -> list[int | None]:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=60))
        except subprocess.TimeoutExpired:
            process.kill()
            codes.append(process.wait(timeout=10))
            codes[-1] = None  # did not stop on SIGTERM
    return codes


@pytest.mark.parametrize("backend,workers", [("postgresql", 2), ("postgresql", 4), ("sqlite", 2)])
def test_workers_together_do_every_effect_once(backend, workers, tmp_path, request):
    lapsing, reminding, waiting, mails = 60, 40, 10, 200
    with ExitStack() as stack:
        if backend == "postgresql":
            request.getfixturevalue("postgres")
            url = stack.enter_context(fresh_postgres_database("sangplats_workers"))
        else:
            url = f"sqlite:///{tmp_path / 'worker.db'}"
            migrate(url)
        smtp = SmtpServer().start()
        stack.callback(smtp.stop)
        world = World(url, tmp_path)
        stack.callback(world.close)
        processes: list[subprocess.Popen] = []
        stack.callback(_stop, processes)
        _run_workers(world, smtp, backend, workers, tmp_path, processes, lapsing, reminding, waiting, mails)


def _run_workers(world: World, smtp: SmtpServer, backend: str, workers: int, tmp_path: Path,
                 processes: list[subprocess.Popen], lapsing: int, reminding: int, waiting: int, mails: int) -> None:
    world.seed(lapsing=lapsing, reminding=reminding, waiting=waiting)
    env = _env(world.url, tmp_path, MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp.port), WORKER_TICK_SECONDS="0.2",
               WORKER_STRIPE_SECONDS="3600")
    logs = [tmp_path / f"worker{i}.log" for i in range(workers)]
    for log in logs:
        with open(log, "wb") as out:
            processes.append(subprocess.Popen([str(FLASK), "--app", "wsgi", "worker"], cwd=ROOT, env=env,  # nosec
                                              stdout=out, stderr=subprocess.STDOUT))
    _poll(f"{workers} heartbeats", lambda: world.scalar("SELECT count(*) FROM worker_heartbeats") == workers,
          processes=processes, logs=logs)
    world.the_moment(mails=mails)
    started = time.monotonic()
    lapsing_ids = ",".join(map(str, world.lapsing))
    _poll("every hold expired, every reminder queued, every message sent", lambda: world.rows(
        f"SELECT (SELECT count(*) FROM bookings WHERE id IN ({lapsing_ids}) AND status = 'awaiting_payment'),"
        " (SELECT count(*) FROM audit_entries WHERE action = 'booking.hold_reminder_queued'),"
        " (SELECT count(*) FROM outbox_emails WHERE status <> 'sent')")[0] == (0, reminding, 0),
        processes=processes, logs=logs)
    took = time.monotonic() - started
    codes = _stop(processes)
    assert codes == [0] * workers, f"exit codes {codes}: {_tails(logs)}"
    assert world.scalar("SELECT count(*) FROM worker_heartbeats") == 0  # each removed its row on the way out

    # Each hold expired once: one audit entry and one e-mail each.
    expired = Counter(int(object_id) for (object_id,) in world.rows(
        "SELECT object_id FROM audit_entries WHERE action = 'booking.expired'"))
    assert expired == Counter(world.lapsing)
    assert world.scalar("SELECT count(*) FROM outbox_emails WHERE subject LIKE 'Reservationen har gått ut%'") \
        == lapsing
    # Each reminder queued once.
    reminded = Counter(int(object_id) for (object_id,) in world.rows(
        "SELECT object_id FROM audit_entries WHERE action = 'booking.hold_reminder_queued'"))
    assert reminded == Counter(world.reminding)
    assert world.scalar("SELECT count(*) FROM outbox_emails WHERE subject LIKE 'Er reservation går ut%'") \
        == reminding
    # The lapsed beds went to the waiting list, one offer per waiting delegation.
    offered = Counter(int(object_id) for (object_id,) in world.rows(
        "SELECT object_id FROM audit_entries WHERE action = 'waitlist.offered'"))
    assert offered == Counter(world.entries)
    assert world.scalar("SELECT count(*) FROM waitlist_entries WHERE status = 'offered'") == waiting
    # Each message sent once: one attempt each, and each arrived once at the SMTP server.
    outbox = dict(world.rows("SELECT id, attempts FROM outbox_emails"))
    assert set(outbox.values()) == {1}, Counter(outbox.values())
    arrived = smtp.inbox.outbox_ids()
    assert arrived == Counter(outbox.keys()), {i: n for i, n in arrived.items() if n != 1}
    assert len(smtp.inbox.messages) == len(outbox) >= mails + lapsing + reminding + waiting

    per_worker = [_work_of(log) for log in logs]
    print(f"\n{workers} workers on {backend}: {lapsing} holds lapsed, {reminding} reminders, {waiting} waiting, "
          f"{len(outbox)} messages; done {took:.1f} s after the moment; exit codes {codes}")
    for i, work in enumerate(per_worker):
        print(f"  worker {i}: expired {work['expired']}, reminded {work['reminded']}, sent {work['sent']}")
    assert sum(w["expired"] for w in per_worker) == lapsing and sum(w["sent"] for w in per_worker) == len(outbox)
    assert sum(1 for w in per_worker if w["sent"]) >= 2, "one worker sent everything: no concurrency shown"


def _work_of(log: Path) -> Counter:
    """What one worker says it did (its log lines `expire_holds: expired N: ...`, `send_mail: N sent, ...`)."""
    work: Counter = Counter()
    for line in log.read_text(errors="replace").splitlines():
        for key, pattern in (("expired", r"expire_holds: expired (\d+)"), ("reminded", r"remind_holds: reminded (\d+)"),
                             ("sent", r"send_mail: (\d+) sent")):
            match = re.search(pattern, line)
            if match:
                work[key] += int(match.group(1))
    return work


def test_sigterm_lets_the_running_job_finish_and_exits_0(tmp_path):
    """SIGTERM while the worker is handing a message to a slow SMTP server: the message is still sent and recorded
    (not left claimed for another worker to send again), the heartbeat row goes, the exit status is 0."""
    url = f"sqlite:///{tmp_path / 'worker.db'}"
    migrate(url)
    smtp = SmtpServer().start()
    smtp.inbox.delay = 2.0
    world = World(url, tmp_path)
    log = tmp_path / "worker.log"
    worker = None
    try:
        from app.services import mail
        from app.services.base import unit_of_work
        with world.app.app_context(), unit_of_work():
            mail.queue_email("gast@example.se", "Hej", "Text")
        env = _env(url, tmp_path, MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp.port), WORKER_TICK_SECONDS="0.2")
        with open(log, "wb") as out:
            worker = subprocess.Popen([str(FLASK), "--app", "wsgi", "worker"], cwd=ROOT, env=env,  # nosec B603
                                      stdout=out, stderr=subprocess.STDOUT)
        assert smtp.inbox.receiving.wait(60), _tails([log])  # the worker is inside send_mail, mid-hand-over
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, _tails([log])
        assert world.rows("SELECT status, attempts, claimed_until FROM outbox_emails") == [("sent", 1, None)]
        assert len(smtp.inbox.messages) == 1
        assert world.scalar("SELECT count(*) FROM worker_heartbeats") == 0
        assert "stopping: letting the running jobs finish" in log.read_text()
    finally:
        if worker is not None:
            _stop([worker])
        smtp.stop()
        world.close()


# --- the one-shot commands, two at once (the defects issue 14 found) ---------------------------------------------


def _two_at_once(world: World, env: dict, *args: str) -> list[subprocess.CompletedProcess]:
    """Start the command twice while the test holds audit_entries locked (every run writes there before it
    commits): each run has then read its work before the other could commit, whichever went first. Released once
    each run waits on a lock or has finished."""
    with world.engine.connect() as gate:
        gate.execute(text("LOCK TABLE audit_entries IN EXCLUSIVE MODE"))
        runs = [subprocess.Popen([str(FLASK), "--app", "wsgi", *args], cwd=ROOT, env=env, text=True,  # nosec
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            blocked = world.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND wait_event_type = 'Lock'")
            if blocked + sum(run.poll() is not None for run in runs) >= 2:
                break
            assert time.monotonic() < deadline, "the two runs never reached their writes"
            time.sleep(0.05)
        gate.rollback()
    results = []
    for run in runs:
        out, err = run.communicate(timeout=DEADLINE_SECONDS)
        results.append(subprocess.CompletedProcess(run.args, run.returncode, out, err))
    return results


@pytest.mark.parametrize("command", ["holds expire", "mail remind-holds"])
def test_two_one_shot_runs_at_once_do_each_effect_once(command, postgres, tmp_path):
    holds = 51
    with fresh_postgres_database("sangplats_oneshot") as url:
        world = World(url, tmp_path)
        try:
            world.seed(lapsing=holds if command == "holds expire" else 0,
                       reminding=holds if command == "mail remind-holds" else 0, waiting=0)
            world.the_moment(mails=0)
            results = _two_at_once(world, _env(url, tmp_path), *command.split())
            assert [r.returncode for r in results] == [0, 0], [r.stderr[-1000:] for r in results]
            action, subject = (("booking.expired", "Reservationen har gått ut%") if command == "holds expire"
                               else ("booking.hold_reminder_queued", "Er reservation går ut%"))
            audited = world.scalar("SELECT count(*) FROM audit_entries WHERE action = :a", a=action)
            mailed = world.scalar("SELECT count(*) FROM outbox_emails WHERE subject LIKE :s", s=subject)
            print(f"\ntwo `flask {command}` at once, {holds} holds: {[r.stdout.strip()[:40] for r in results]}; "
                  f"{audited} audit entries, {mailed} e-mails")
            assert (audited, mailed) == (holds, holds)
        finally:
            world.close()


# --- make run ----------------------------------------------------------------------------------------------------


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _listening(port: int) -> bool:
    import socket
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("stop", ["ctrl_c", "sigterm_to_the_supervisor"])
def test_make_run_serves_on_port_with_a_worker_and_stops_everything(stop, tmp_path):
    port, stripe_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in OWN_KEYS + ("PORT", "STRIPE_PORT", "MAKEFLAGS")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}", MAIL_OUTBOX_DIR=str(tmp_path / "mail"))
    log = tmp_path / "make-run.log"
    with open(log, "wb") as out:
        make = subprocess.Popen(["make", "--no-print-directory", "run", f"PORT={port}",  # nosec B603 B607
                                 f"STRIPE_PORT={stripe_port}"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    pgid = make.pid  # its own session and process group: everything `make run` starts is in it
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        health = None
        while time.monotonic() < deadline and make.poll() is None:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
                if health.get("worker") == "ok":
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        assert health and health["worker"] == "ok", log.read_text(errors="replace")[-3000:]
        assert f"Sign in at http://127.0.0.1:{port}/login" in log.read_text()  # BASE_URL follows PORT
        assert _listening(stripe_port)
        listeners = Path("/proc/net/tcp").read_text() + Path("/proc/net/tcp6").read_text()
        own = [line.split()[1] for line in listeners.splitlines()[1:] if line.split()[1].endswith(f":{stripe_port:04X}")
               and line.split()[3] == "0A"]  # 0A: LISTEN
        assert own == [f"0100007F:{stripe_port:04X}"], own  # localstripe on 127.0.0.1 only

        if stop == "ctrl_c":
            os.killpg(pgid, signal.SIGINT)  # what the terminal sends to the whole foreground group
        else:
            supervisor = next(int(p) for p in subprocess.run(  # nosec B603 B607
                ["pgrep", "-g", str(pgid), "-f", "tools.run"], capture_output=True, text=True).stdout.split())
            os.kill(supervisor, signal.SIGTERM)
        make.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _group_alive(pgid), subprocess.run(["ps", "-o", "pid,cmd", "-g", str(pgid)],  # nosec B603 B607
                                                      capture_output=True, text=True).stdout
        assert not _listening(port) and not _listening(stripe_port)
        assert "worker" in log.read_text() and "stopped" in log.read_text()
    finally:
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
