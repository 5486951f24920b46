"""Host profiles and their vetting."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:  # relationship targets: the mapper resolves them by name (app.models imports them all)
    from app.models.users import User

VETTING_STATUSES = ("pending", "approved", "rejected", "suspended")


class HostProfile(Model):
    __tablename__ = "host_profiles"
    __table_args__ = (
        CheckConstraint(
            "vetting_status IN ('pending', 'approved', 'rejected', 'suspended')", name="vetting_status"
        ),
        CheckConstraint("strikes >= 0", name="strikes_not_negative"),
        CheckConstraint("vat_rate_pct IS NULL OR (vat_rate_pct > 0 AND vat_rate_pct <= 25)", name="vat_rate"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(40))
    address: Mapped[str] = mapped_column(String(300))
    postal_code: Mapped[str] = mapped_column(String(6))
    right_to_rent: Mapped[bool] = mapped_column(Boolean)
    # Invoicing, optional: the seller's organisation (or personal) number and VAT number on the invoice, and the
    # VAT rate of a VAT-registered host (null: outside VAT, the usual private letting; 12 for accommodation).
    organisation_number: Mapped[str | None] = mapped_column(String(20))
    vat_number: Mapped[str | None] = mapped_column(String(20))
    vat_rate_pct: Mapped[int | None] = mapped_column()
    vetting_status: Mapped[str] = mapped_column(String(16), default="pending")
    strikes: Mapped[int] = mapped_column(default=0)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    verified_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(String(1000))
    calendar_token: Mapped[str] = mapped_column(String(64), unique=True)
    # The vetting document (an Upload in the database) and the name it was uploaded with, shown in lists.
    document_id: Mapped[int | None] = mapped_column(ForeignKey("uploads.id"))
    document_original_name: Mapped[str | None] = mapped_column(String(200))

    user: Mapped[User] = relationship(back_populates="host_profile")

    @property
    def is_approved(self) -> bool:
        return self.vetting_status == "approved"
