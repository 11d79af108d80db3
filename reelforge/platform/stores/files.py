"""Uploaded files (`/v1/files`): footage archives a tenant uploads for fine-tuning.

A file row exists once its bytes are stored, as `uploaded`; validation (the ingestion inventory:
every video accepted or rejected with a reason) then sets `processed` or `error`, once: the first
outcome stands. Only a processed file may feed a fine-tuning job. Validation runs in the
background under a lease on the row: a file whose validator died with its API server is taken
over when the lease runs out, a bounded number of times. Every read takes the tenant: another
tenant's file id is not found.
"""

from __future__ import annotations

import secrets
import time

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Integer,
    String,
    and_,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from reelforge.errors import NotFoundError
from reelforge.platform.stores.database import Base, session_factory

UPLOADED, PROCESSED, ERROR = "uploaded", "processed", "error"
PURPOSES = ("fine-tune",)


def new_file_id() -> str:
    return f"file-{secrets.token_hex(12)}"


class UploadedFile(Base):
    """One uploaded footage archive and the outcome of its validation."""

    __tablename__ = "files"

    tenant: Mapped[str] = mapped_column(String(63), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default_factory=new_file_id)
    created_at: Mapped[float] = mapped_column(Float, index=True, default_factory=time.time)
    status: Mapped[str] = mapped_column(String(16), default=UPLOADED)
    status_details: Mapped[str | None] = mapped_column(String(4000), nullable=True, default=None)
    report: Mapped[dict | None] = mapped_column(JSON, nullable=True, default=None)  # the inventory: accepted/rejected
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    declaration: Mapped[dict | None] = mapped_column(JSON, nullable=True, default=None)  # uploader, license, consent
    validation_lease_until: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    validation_attempts: Mapped[int] = mapped_column(Integer, default=0)


class FileStore:
    """Tenant-scoped file records."""

    def __init__(self, database_url: str) -> None:
        self._session = session_factory(database_url)

    def create(
        self,
        file_id: str,
        tenant: str,
        filename: str,
        purpose: str,
        size: int,
        sha256: str,
        declaration: dict | None = None,
        lease_s: float | None = None,
    ) -> UploadedFile:
        """Record a stored upload, not yet validated; with `lease_s`, its first validation is under way."""
        row = UploadedFile(
            id=file_id,
            tenant=tenant,
            filename=filename[:255],
            purpose=purpose,
            bytes=size,
            sha256=sha256,
            declaration=declaration,
            validation_lease_until=None if lease_s is None else time.time() + lease_s,
            validation_attempts=0 if lease_s is None else 1,
        )
        with self._session.begin() as session:
            session.add(row)
        return row

    def get(self, tenant: str, file_id: str) -> UploadedFile:
        """The tenant's file; NotFoundError for unknown, deleted or another tenant's ids alike."""
        with self._session() as session:
            row = session.get(UploadedFile, file_id)
            if row is None or row.tenant != tenant or row.deleted:
                raise NotFoundError(f"no file with id {file_id!r}", param="file_id")
            return row

    def list(
        self, tenant: str, purpose: str | None = None, after: str | None = None, limit: int = 100, order: str = "desc"
    ) -> tuple[list[UploadedFile], bool]:
        """One page of the tenant's files by creation time; returns (page, has_more)."""
        conditions = [UploadedFile.tenant == tenant, UploadedFile.deleted.is_(False)]
        if purpose:
            conditions.append(UploadedFile.purpose == purpose)
        newest_first = order == "desc"
        if after is not None:
            cursor = self.get(tenant, after)
            before = (
                (UploadedFile.created_at < cursor.created_at)
                if newest_first
                else (UploadedFile.created_at > cursor.created_at)
            )
            tie = (UploadedFile.id < cursor.id) if newest_first else (UploadedFile.id > cursor.id)
            conditions.append(or_(before, and_(UploadedFile.created_at == cursor.created_at, tie)))
        ordering = (
            (UploadedFile.created_at.desc(), UploadedFile.id.desc())
            if newest_first
            else (UploadedFile.created_at, UploadedFile.id)
        )
        with self._session() as session:
            rows = session.scalars(select(UploadedFile).where(*conditions).order_by(*ordering).limit(limit + 1)).all()
            files = list(rows)
        return files[:limit], len(files) > limit

    def finish_validation(self, file_id: str, ok: bool, details: str, report: dict) -> bool:
        """Store the validation outcome, `processed` (usable for fine-tuning) or `error`; False if one already was."""
        with self._session.begin() as session:
            result = session.execute(
                update(UploadedFile)
                .where(UploadedFile.id == file_id, UploadedFile.status == UPLOADED)
                .values(
                    status=PROCESSED if ok else ERROR,
                    status_details=details[:4000],
                    report=report,
                    validation_lease_until=None,
                )
            )
            return result.rowcount == 1

    def claim_abandoned_validations(self, lease_s: float, max_attempts: int, limit: int = 10) -> list[UploadedFile]:
        """Take over validations whose lease ran out (their validator died), each under a new lease.

        The claim is a compare-and-set on the old lease, so of several replicas sweeping at once one
        wins each file. A file already tried `max_attempts` times is `error` instead, with that reason.
        """
        now = time.time()
        with self._session() as session:
            stale = session.scalars(
                select(UploadedFile)
                .where(
                    UploadedFile.status == UPLOADED,
                    UploadedFile.deleted.is_(False),
                    or_(UploadedFile.validation_lease_until.is_(None), UploadedFile.validation_lease_until < now),
                )
                .order_by(UploadedFile.created_at)
                .limit(limit)
            ).all()
        claimed = []
        for row in stale:
            if row.validation_attempts >= max_attempts:
                self.finish_validation(
                    row.id,
                    False,
                    f"validation was started {row.validation_attempts} times and never finished (its server "
                    "stopped each time); upload the file again or contact the operator",
                    {"accepted": [], "rejected": []},
                )
                continue
            with self._session.begin() as session:
                lease = UploadedFile.validation_lease_until
                result = session.execute(
                    update(UploadedFile)
                    .where(
                        UploadedFile.id == row.id,
                        UploadedFile.status == UPLOADED,
                        lease.is_(None) if row.validation_lease_until is None else lease == row.validation_lease_until,
                    )
                    .values(validation_lease_until=now + lease_s, validation_attempts=row.validation_attempts + 1)
                )
            if result.rowcount == 1:
                claimed.append(row)
        return claimed

    def delete(self, tenant: str, file_id: str) -> UploadedFile:
        """Hide the file from its tenant (the caller removes its bytes)."""
        found = self.get(tenant, file_id)
        with self._session.begin() as session:
            session.execute(update(UploadedFile).where(UploadedFile.id == file_id).values(deleted=True))
        return found
