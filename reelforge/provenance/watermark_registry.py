"""Which request each watermark id belongs to: the 32-bit payload is a random id, not a secret.

Ids are drawn at random (not sequential, so an id says nothing about volume) and unique by
primary key; a collision is simply drawn again.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from sqlalchemy import BigInteger, Float, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from reelforge.platform.database import Base, session_factory


class WatermarkRow(Base):
    __tablename__ = "watermarks"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    video_id: Mapped[str] = mapped_column(String(40), index=True)
    tenant: Mapped[str] = mapped_column(String(63))
    created_at: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True)
class WatermarkOwner:
    """The request a watermark id was issued for."""

    watermark_id: int
    video_id: str
    tenant: str
    created_at: float


class WatermarkRegistry:
    """Issues watermark ids for videos and maps read ids back to them."""

    def __init__(self, database_url: str) -> None:
        self._session = session_factory(database_url)

    def issue(self, video_id: str, tenant: str) -> int:
        """A fresh random 32-bit id recorded for `video_id`."""
        while True:
            candidate = secrets.randbits(32)
            try:
                with self._session.begin() as session:
                    session.add(WatermarkRow(id=candidate, video_id=video_id, tenant=tenant, created_at=time.time()))
                return candidate
            except IntegrityError:
                continue  # taken: one in four billion per issued id

    def owner(self, watermark_id: int) -> WatermarkOwner | None:
        with self._session() as session:
            row = session.scalar(select(WatermarkRow).where(WatermarkRow.id == watermark_id))
            return WatermarkOwner(row.id, row.video_id, row.tenant, row.created_at) if row else None
