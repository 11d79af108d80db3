"""The audit log: an append-only, tenant-scoped record of who did what with which adapter, and when.

Rows are only ever inserted; the database refuses UPDATE and DELETE on the table (a trigger on
SQLite and PostgreSQL, made by the baseline migration), so a record cannot be rewritten by the
application either.
"""

from __future__ import annotations

import json
import time

from sqlalchemy import JSON, Float, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from reelforge.platform.stores.database import Base, session_factory

# Actions recorded across the platform.
VIDEO_REQUESTED, VIDEO_REFUSED, VIDEO_COMPLETED, VIDEO_FAILED, VIDEO_DELETED = (
    "video.requested",
    "video.refused",
    "video.completed",
    "video.failed",
    "video.deleted",
)
VIDEO_HELD, VIDEO_APPROVED, VIDEO_REJECTED = "video.held_for_review", "video.approved", "video.rejected"
ADAPTER_PROMOTED, ADAPTER_ROLLED_BACK, ADAPTER_IMPORTED = "adapter.promoted", "adapter.rolled_back", "adapter.imported"
FINETUNE_CREATED, FINETUNE_CANCELLED, FINETUNE_COMPLETED, FINETUNE_FAILED = (
    "finetune.created",
    "finetune.cancelled",
    "finetune.completed",
    "finetune.failed",
)


class AuditEvent(Base):
    """One audit record: who (`actor`) did what (`action`) to which `subject`, for which tenant, and when."""

    __tablename__ = "audit_events"

    tenant: Mapped[str] = mapped_column(String(63), index=True)
    actor: Mapped[str] = mapped_column(String(120))  # the API key (masked) or "cli:<user>" or "generator:<replica>"
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(300))  # video id, registered adapter name/version, job id
    details: Mapped[dict] = mapped_column(JSON)
    at: Mapped[float] = mapped_column(Float, default_factory=time.time)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True, init=False)

    def to_dict(self) -> dict:
        """The record as `/v1/audit` and `reelforge audit export` show it."""
        return {
            "object": "audit.event",
            "id": self.id,
            "tenant": self.tenant,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "details": dict(self.details or {}),
        }


class AuditLog:
    """Append and read tenant-scoped audit records."""

    def __init__(self, database_url: str) -> None:
        self._session = session_factory(database_url)

    def record(self, tenant: str, actor: str, action: str, subject: str, **details) -> None:
        """Append one record."""
        with self._session.begin() as session:
            session.add(AuditEvent(tenant=tenant, actor=actor, action=action, subject=subject, details=details))

    def events(self, tenant: str, after: int | None = None, limit: int = 100) -> tuple[list[AuditEvent], bool]:
        """The tenant's records in order, after record id `after`; returns (page, has_more)."""
        conditions = [AuditEvent.tenant == tenant]
        if after is not None:
            conditions.append(AuditEvent.id > after)
        with self._session() as session:
            rows = session.scalars(select(AuditEvent).where(*conditions).order_by(AuditEvent.id).limit(limit + 1)).all()
            events = list(rows)
        return events[:limit], len(events) > limit

    def export_jsonl(self, tenant: str, handle) -> int:
        """Write every record of `tenant` as JSON lines to `handle`; returns how many."""
        count, after = 0, None
        while True:
            page, more = self.events(tenant, after, limit=1000)
            for event in page:
                handle.write(json.dumps(event.to_dict(), sort_keys=True) + "\n")
                count += 1
            if not more:
                return count
            after = page[-1].id
