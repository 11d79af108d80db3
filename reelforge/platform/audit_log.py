"""The audit log: an append-only, tenant-scoped record of who did what with which adapter, and when.

Rows are only ever inserted; the database refuses UPDATE and DELETE on the table (a trigger on
SQLite and PostgreSQL), so a record cannot be rewritten by the application either.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

from sqlalchemy import JSON, Engine, Float, Integer, String, select, text
from sqlalchemy.orm import Mapped, mapped_column

from reelforge.platform.database import Base, session_factory

# Actions recorded across the platform.
VIDEO_REQUESTED, VIDEO_REFUSED, VIDEO_COMPLETED, VIDEO_FAILED, VIDEO_DELETED = (
    "video.requested", "video.refused", "video.completed", "video.failed", "video.deleted")
ADAPTER_PROMOTED, ADAPTER_ROLLED_BACK, ADAPTER_IMPORTED = "adapter.promoted", "adapter.rolled_back", "adapter.imported"
FINETUNE_CREATED, FINETUNE_CANCELLED, FINETUNE_COMPLETED, FINETUNE_FAILED = (
    "finetune.created", "finetune.cancelled", "finetune.completed", "finetune.failed")


class AuditRow(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(63), index=True)
    at: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(120))  # the API key (masked) or "cli:<user>" or "generator:<replica>"
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(300))  # video id, registered adapter name/version, job id
    details: Mapped[dict] = mapped_column(JSON)


@dataclass(frozen=True)
class AuditEvent:
    """One audit record."""

    id: int
    tenant: str
    at: float
    actor: str
    action: str
    subject: str
    details: dict

    def to_dict(self) -> dict:
        return {"object": "audit.event", **asdict(self)}


def install_append_only_guards(engine: Engine) -> None:
    """Make the database itself refuse UPDATE and DELETE on audit rows."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            for verb in ("UPDATE", "DELETE"):
                connection.execute(text(
                    f"CREATE TRIGGER IF NOT EXISTS audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
                ))
        elif engine.dialect.name == "postgresql":
            connection.execute(text(
                "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$ "
                "BEGIN RAISE EXCEPTION 'audit_events is append-only'; END; $$ LANGUAGE plpgsql"
            ))
            connection.execute(text("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events"))
            connection.execute(text(
                "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
                "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
            ))


class AuditLog:
    """Append and read tenant-scoped audit records."""

    def __init__(self, database_url: str) -> None:
        self._session = session_factory(database_url)

    def record(self, tenant: str, actor: str, action: str, subject: str, **details) -> None:
        """Append one record."""
        with self._session.begin() as session:
            session.add(AuditRow(tenant=tenant, at=time.time(), actor=actor, action=action, subject=subject, details=details))

    def events(self, tenant: str, after: int | None = None, limit: int = 100) -> tuple[list[AuditEvent], bool]:
        """The tenant's records in order, after record id `after`; returns (page, has_more)."""
        conditions = [AuditRow.tenant == tenant]
        if after is not None:
            conditions.append(AuditRow.id > after)
        with self._session() as session:
            rows = session.scalars(select(AuditRow).where(*conditions).order_by(AuditRow.id).limit(limit + 1)).all()
            events = [AuditEvent(r.id, r.tenant, r.at, r.actor, r.action, r.subject, dict(r.details or {})) for r in rows]
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
