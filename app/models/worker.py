"""The worker's heartbeat: one row per running `flask worker` process, renewed every tick."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime


class WorkerHeartbeat(Model):
    """A running worker: `/healthz` answers `worker: "late"` when no row was renewed for two minutes."""

    __tablename__ = "worker_heartbeats"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)  # host:pid:random, unique per process
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
