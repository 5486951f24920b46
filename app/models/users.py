"""Users and API tokens."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:  # relationship targets: the mapper resolves them by name (app.models imports them all)
    from app.models.hosts import HostProfile

ROLES = ("host", "coordinator", "admin")


class User(UserMixin, Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('host', 'coordinator', 'admin')", name="role"),
        CheckConstraint("locale IN ('sv', 'en')", name="locale"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    locale: Mapped[str] = mapped_column(String(2), default="sv")
    # A coordinator's phone, shown to the host of a confirmed booking (a host's is on the vetting profile).
    phone: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Bumped on sign-out and password change: every older session cookie stops working.
    session_version: Mapped[int] = mapped_column(default=1)
    # Bumped on password change only: API tokens issued before it stop working.
    token_version: Mapped[int] = mapped_column(default=1)
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_counter: Mapped[int | None] = mapped_column()
    recovery_codes: Mapped[str | None] = mapped_column(String(2000))

    host_profile: Mapped[HostProfile | None] = relationship(back_populates="user", uselist=False)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_host(self) -> bool:
        return self.role == "host"

    @property
    def is_coordinator(self) -> bool:
        return self.role == "coordinator"


class ApiToken(Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_version: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()
