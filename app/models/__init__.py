"""All models, imported here so that Alembic and the app see the whole schema."""
from app.models.allocation import DRAW_STATES, REQUEST_STATUSES, AllocationRequest, AllocationRound
from app.models.audit import AuditEntry
from app.models.bookings import (
    BED_NIGHT_STATES,
    BOOKING_STATUSES,
    LIVE_LINE_STATES,
    OCCUPYING_STATES,
    ORDER_STATUSES,
    BedNight,
    Booking,
    Counter,
    Delegation,
    HostDeduction,
    IdempotencyKey,
    Member,
    Order,
)
from app.models.contracts import AMENDMENT_KINDS, Amendment, Contract
from app.models.flags import FLAG_CATEGORIES, Flag, FlagAppeal
from app.models.hosts import VETTING_STATUSES, HostProfile
from app.models.invoices import INVOICE_STATUSES, CreditNote, Invoice, InvoicePayment, InvoiceReminder
from app.models.listings import BED_KINDS, Bed, BedPrice, Listing, OfferAcceptance, PriceChange, Room
from app.models.misc import OutboxEmail, WaitlistEntry
from app.models.payments import Payment, Payout, Refund, StripeEvent
from app.models.seasons import Season
from app.models.types import utcnow
from app.models.uploads import MAX_UPLOAD_BYTES, Upload
from app.models.users import ROLES, ApiToken, User
from app.models.worker import WorkerHeartbeat

__all__ = [
    "AMENDMENT_KINDS", "Amendment", "AllocationRequest", "AllocationRound", "DRAW_STATES", "REQUEST_STATUSES",
    "AuditEntry", "BED_KINDS", "BED_NIGHT_STATES", "BOOKING_STATUSES", "Bed", "BedNight", "BedPrice", "Booking",
    "Contract", "Counter", "CreditNote", "INVOICE_STATUSES", "Invoice", "InvoicePayment", "InvoiceReminder",
    "Delegation", "FLAG_CATEGORIES", "Flag", "FlagAppeal", "HostDeduction", "HostProfile", "IdempotencyKey",
    "LIVE_LINE_STATES",
    "Listing",
    "Member", "OCCUPYING_STATES", "ORDER_STATUSES", "Order", "OfferAcceptance", "OutboxEmail", "Payment", "Payout",
    "PriceChange", "ROLES",
    "Refund", "Room", "Season", "StripeEvent", "User", "ApiToken", "VETTING_STATUSES", "WaitlistEntry",
    "WorkerHeartbeat", "utcnow", "MAX_UPLOAD_BYTES", "Upload",
]
