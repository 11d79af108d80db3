"""Which request each watermark id belongs to: the 32-bit payload is a random id, not a secret.

Ids are drawn at random (not sequential, so an id says nothing about volume) and unique by
primary key; a collision is simply drawn again.
"""

from __future__ import annotations

import secrets
import time

from sqlalchemy import BigInteger, Float, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from reelforge.platform.stores.database import Base, session_factory


class WatermarkOwner(Base):
    """The request a watermark id was issued for."""

    __tablename__ = "watermarks"

    watermark_id: Mapped[int] = mapped_column("id", BigInteger, primary_key=True, autoincrement=False)
    video_id: Mapped[str] = mapped_column(String(40), index=True)
    tenant: Mapped[str] = mapped_column(String(63))
    created_at: Mapped[float] = mapped_column(Float, default_factory=time.time)


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
                    session.add(WatermarkOwner(watermark_id=candidate, video_id=video_id, tenant=tenant))
                return candidate
            except IntegrityError:
                continue  # taken: one in four billion per issued id

    def owner(self, watermark_id: int) -> WatermarkOwner | None:
        with self._session() as session:
            return session.get(WatermarkOwner, watermark_id)
