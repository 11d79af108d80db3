"""Usage metering: one record per finished generation (and, later, per training job) with the
tenant, model and adapter version, device seconds and frames produced; summaries by day.

A record is keyed by (kind, job id), so a job that is retried or reported twice is counted once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Float, Integer, String, UniqueConstraint, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from reelforge.errors import UserInputError
from reelforge.platform.stores.database import Base, session_factory

GENERATION, TRAINING, REFUSAL = "generation", "training", "refusal"


class UsageRecord(Base):
    """One finished job's metered usage: device seconds and frames, on which model and adapter."""

    __tablename__ = "usage_records"
    __table_args__ = (UniqueConstraint("kind", "job_id", name="one_record_per_job"),)

    tenant: Mapped[str] = mapped_column(String(63), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    adapter: Mapped[str | None] = mapped_column(String(300), nullable=True)
    device: Mapped[str] = mapped_column(String(16))  # cpu, cuda ...: what the seconds were spent on
    seconds: Mapped[float] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer)
    day: Mapped[str] = mapped_column(String(10), index=True)  # UTC date, YYYY-MM-DD
    recorded_at: Mapped[float] = mapped_column(Float)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True, init=False)


@dataclass(frozen=True)
class UsageSummary:
    """Usage of one tenant on one day for one kind, model and device."""

    day: str
    kind: str
    model: str
    device: str
    jobs: int
    seconds: float
    frames: int

    def to_dict(self) -> dict:
        return {
            "day": self.day,
            "kind": self.kind,
            "model": self.model,
            "device": self.device,
            "jobs": self.jobs,
            "seconds": round(self.seconds, 3),
            "frames": self.frames,
        }


def utc_day(timestamp: float) -> str:
    """The UTC date of a Unix time, as YYYY-MM-DD."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d")


def parse_day(text: str, param: str) -> str:
    """Check a YYYY-MM-DD date given by a client."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").strftime("%Y-%m-%d")
    except ValueError as exc:
        raise UserInputError(f"{param} {text!r} is not a date of the form YYYY-MM-DD", param=param) from exc


def usage_record(
    tenant: str,
    kind: str,
    job_id: str,
    model: str,
    adapter: str | None,
    device: str,
    seconds: float,
    frames: int,
    at: float | None = None,
) -> UsageRecord:
    """One job's usage row, for `UsageMeter.record` or for a caller that writes it in its own transaction."""
    at = time.time() if at is None else at
    return UsageRecord(
        tenant=tenant,
        kind=kind,
        job_id=job_id,
        model=model,
        adapter=adapter,
        device=device,
        seconds=float(seconds),
        frames=int(frames),
        day=utc_day(at),
        recorded_at=at,
    )


class UsageMeter:
    """Records and summarises metered usage in the platform database."""

    def __init__(self, database_url: str) -> None:
        self._session = session_factory(database_url)

    def record(self, row: UsageRecord) -> bool:
        """Add one job's usage (built by `usage_record`); False if that job was already recorded."""
        try:
            with self._session.begin() as session:
                session.add(row)
        except IntegrityError:
            return False
        return True

    def summary(self, tenant: str, start_day: str | None = None, end_day: str | None = None) -> list[UsageSummary]:
        """The tenant's usage per day, kind, model and device, oldest day first (days inclusive)."""
        conditions = [UsageRecord.tenant == tenant]
        if start_day:
            conditions.append(UsageRecord.day >= start_day)
        if end_day:
            conditions.append(UsageRecord.day <= end_day)
        columns = (UsageRecord.day, UsageRecord.kind, UsageRecord.model, UsageRecord.device)
        with self._session() as session:
            rows = session.execute(
                select(*columns, func.count(), func.sum(UsageRecord.seconds), func.sum(UsageRecord.frames))
                .where(*conditions)
                .group_by(*columns)
                .order_by(*columns)
            ).all()
        return [
            UsageSummary(day, kind, model, device, int(n), float(s or 0.0), int(f or 0))
            for day, kind, model, device, n, s, f in rows
        ]
