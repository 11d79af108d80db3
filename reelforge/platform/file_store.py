"""Uploaded files (`/v1/files`): footage archives a tenant uploads for fine-tuning.

A file row exists once its bytes are stored; validation (the ingestion inventory: every video
accepted or rejected with a reason) then sets `processed` or `error`, and only a processed file
may feed a fine-tuning job. Every read takes the tenant: another tenant's file id is not found.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, fields

from sqlalchemy import JSON, BigInteger, Boolean, Float, String, and_, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column

from reelforge.platform.api_errors import NotFoundError
from reelforge.platform.database import Base, session_factory

UPLOADED, PROCESSED, ERROR = "uploaded", "processed", "error"
PURPOSES = ("fine-tune",)


class FileRow(Base):
    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(63), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float, index=True)
    status: Mapped[str] = mapped_column(String(16))
    status_details: Mapped[str | None] = mapped_column(String(4000), nullable=True)
    report: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


@dataclass(frozen=True)
class UploadedFile:
    """A snapshot of one file row."""

    id: str
    tenant: str
    filename: str
    purpose: str
    bytes: int
    sha256: str
    created_at: float
    status: str
    status_details: str | None
    report: dict | None
    deleted: bool

    def to_openai(self) -> dict:
        """OpenAI's `file` object."""
        return {"id": self.id, "object": "file", "bytes": self.bytes, "created_at": int(self.created_at),
                "filename": self.filename, "purpose": self.purpose, "status": self.status,
                "status_details": self.status_details, "expires_at": None}


_FIELDS = [f.name for f in fields(UploadedFile)]


def new_file_id() -> str:
    return f"file-{secrets.token_hex(12)}"


class FileStore:
    """Tenant-scoped file records."""

    def __init__(self, database_url: str) -> None:
        self._session = session_factory(database_url)

    def create(self, file_id: str, tenant: str, filename: str, purpose: str, size: int, sha256: str) -> UploadedFile:
        """Record a stored upload, not yet validated."""
        row = FileRow(id=file_id, tenant=tenant, filename=filename[:255], purpose=purpose, bytes=size, sha256=sha256,
                      created_at=time.time(), status=UPLOADED, deleted=False)
        with self._session.begin() as session:
            session.add(row)
        return self.get(tenant, file_id)

    def get(self, tenant: str, file_id: str) -> UploadedFile:
        """The tenant's file; NotFoundError for unknown, deleted or another tenant's ids alike."""
        with self._session() as session:
            row = session.get(FileRow, file_id)
            if row is None or row.tenant != tenant or row.deleted:
                raise NotFoundError(f"no file with id {file_id!r}", param="file_id")
            return UploadedFile(**{n: getattr(row, n) for n in _FIELDS})

    def list(self, tenant: str, purpose: str | None = None, after: str | None = None, limit: int = 100,
             order: str = "desc") -> tuple[list[UploadedFile], bool]:
        """One page of the tenant's files by creation time; returns (page, has_more)."""
        conditions = [FileRow.tenant == tenant, FileRow.deleted.is_(False)]
        if purpose:
            conditions.append(FileRow.purpose == purpose)
        newest_first = order == "desc"
        if after is not None:
            cursor = self.get(tenant, after)
            before = (FileRow.created_at < cursor.created_at) if newest_first else (FileRow.created_at > cursor.created_at)
            tie = (FileRow.id < cursor.id) if newest_first else (FileRow.id > cursor.id)
            conditions.append(or_(before, and_(FileRow.created_at == cursor.created_at, tie)))
        ordering = (FileRow.created_at.desc(), FileRow.id.desc()) if newest_first else (FileRow.created_at, FileRow.id)
        with self._session() as session:
            rows = session.scalars(select(FileRow).where(*conditions).order_by(*ordering).limit(limit + 1)).all()
            files = [UploadedFile(**{n: getattr(r, n) for n in _FIELDS}) for r in rows]
        return files[:limit], len(files) > limit

    def finish_validation(self, file_id: str, ok: bool, details: str, report: dict) -> None:
        """Store the validation outcome: `processed` (usable for fine-tuning) or `error`."""
        with self._session.begin() as session:
            session.execute(update(FileRow).where(FileRow.id == file_id).values(
                status=PROCESSED if ok else ERROR, status_details=details[:4000], report=report))

    def delete(self, tenant: str, file_id: str) -> UploadedFile:
        """Hide the file from its tenant (the caller removes its bytes)."""
        found = self.get(tenant, file_id)
        with self._session.begin() as session:
            session.execute(update(FileRow).where(FileRow.id == file_id).values(deleted=True))
        return found
