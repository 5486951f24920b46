"""Issue 9, accounts: long e-mail addresses, TOTP failures and replays, parallel sign-ups."""
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, User
from app.services import accounts
from app.services.errors import Conflict
from tests.helpers import NOW, PASSWORD

# 64 + 1 + 63 + 1 + 63 + 1 + 58 + 3 = 254 characters, the most RFC 5321 allows.
LONG_EMAIL = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".se"


def test_a_254_character_address_signs_up_locks_out_and_resets(api_as, make_user, client):
    assert len(LONG_EMAIL) == 254
    user = make_user("coordinator", email=LONG_EMAIL)
    anon = api_as()
    assert anon.post("/tokens", {"email": LONG_EMAIL, "password": PASSWORD}).status_code == 201
    for _ in range(10):
        assert anon.post("/tokens", {"email": LONG_EMAIL, "password": "wrong-password-x"}).status_code == 401
    locked = anon.post("/tokens", {"email": LONG_EMAIL, "password": PASSWORD})
    assert locked.status_code == 429 and locked.get_json()["code"] == "rate_limited"
    accounts.request_password_reset(LONG_EMAIL, reset_url=lambda t: f"https://example.se/r/{t}")
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "auth.password_reset_requested")).one()
    assert entry.object_id == LONG_EMAIL and entry.actor_id == user.id


def test_wrong_totp_codes_count_as_failed_sign_ins(app, make_admin):
    secret = pyotp.random_base32()
    admin = make_admin(totp_secret=secret)
    totp = pyotp.TOTP(secret)
    step = int(NOW.timestamp()) // 30
    wrong = next(c for c in ("000000", "111111", "222222")
                 if c not in {totp.generate_otp(s) for s in (step - 1, step, step + 1)})
    for i in range(10):
        with pytest.raises(Exception) as raised:
            accounts.authenticate(admin.email, PASSWORD, otp=wrong, now=NOW + timedelta(seconds=i))
        assert getattr(raised.value, "code", None) == "invalid_otp"
    with pytest.raises(accounts.RateLimited):
        accounts.authenticate(admin.email, PASSWORD, otp=totp.at(NOW + timedelta(seconds=20)),
                              now=NOW + timedelta(seconds=20))


def test_wrong_totp_codes_lock_the_token_door(api_as, make_admin):
    secret = pyotp.random_base32()
    admin = make_admin(totp_secret=secret)
    anon = api_as()
    body = {"email": admin.email, "password": PASSWORD}
    answers = []
    for _ in range(10):
        current = pyotp.TOTP(secret).now()
        answers.append(anon.post("/tokens", {**body, "otp": "000000" if current != "000000" else "111111"}
                                 ).get_json()["code"])
    assert answers == ["invalid_otp"] * 10
    locked = anon.post("/tokens", {**body, "otp": pyotp.TOTP(secret).now()})
    assert locked.status_code == 429 and locked.get_json()["code"] == "rate_limited"
    assert int(locked.headers["Retry-After"]) > 0


def test_a_totp_step_is_recorded_with_a_conditional_update(app, make_admin):
    """Two checks that both read the old step: only the first write wins (the second sees rowcount 0)."""
    secret = pyotp.random_base32()
    admin = make_admin(totp_secret=secret)
    code = pyotp.TOTP(secret).at(NOW)
    stale = db.session.get(User, admin.id)
    accounts.check_otp(stale, code, now=NOW)
    with pytest.raises(Exception) as raised:
        accounts.check_otp(stale, code, now=NOW)
    assert raised.value.code == "invalid_otp"


def test_a_sign_up_losing_the_unique_index_race_is_email_taken(app, make_user, monkeypatch):
    """The existence check passed (as in a parallel request), then the unique index refuses: 409, not 500."""
    make_user("coordinator", email="twice@example.se")
    real_scalar = db.session.scalar

    def blind_scalar(statement, *args, **kwargs):
        if "users.email" in str(statement) and "users.id" in str(statement).split("FROM")[0]:
            return None  # what a parallel request saw before the first one committed
        return real_scalar(statement, *args, **kwargs)

    monkeypatch.setattr(db.session, "scalar", blind_scalar)
    with pytest.raises(Conflict) as raised:
        accounts.register_user("twice@example.se", PASSWORD, "Två", "coordinator")
    assert raised.value.code == "email_taken"


def test_the_widened_audit_log_stays_append_only(app, make_user):
    """Migration 0006 rebuilds the table on SQLite: its UPDATE/DELETE triggers must come back."""
    from sqlalchemy import text
    make_user("coordinator")
    for statement in ("UPDATE audit_entries SET action = 'x'", "DELETE FROM audit_entries"):
        with pytest.raises(Exception, match="immutable"):
            with db.engine.begin() as connection:
                connection.execute(text(statement))
