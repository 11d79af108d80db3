"""Each registered adapter version's SHA-256, as the platform recorded it when it registered the version,
and the fingerprint of the base checkpoint it was trained on (so a request for it is refused at the
door when another checkpoint is served, see `models/base_fingerprint.py`).

Serving checks a downloaded adapter against this record, never against a tag in the MLflow
registry it downloads from: whoever can write to the registry (swap an artifact, edit a tag) could
otherwise swap a tenant's production adapter. The platform database is written only by the
platform's own registration paths (fine-tunes and `reelforge adapters import`).
"""

from __future__ import annotations

import time

from sqlalchemy import Float, Integer, String, delete
from sqlalchemy.orm import Mapped, mapped_column

from reelforge.platform.stores.database import Base, session_factory


class AdapterDigest(Base):
    """The content hash of one registry version, recorded at registration."""

    __tablename__ = "adapter_digests"

    name: Mapped[str] = mapped_column(String(300), primary_key=True)  # registered model name
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sha256: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(String(63), index=True)
    source: Mapped[str] = mapped_column(String(1000))  # the artifact URI registered
    recorded_at: Mapped[float] = mapped_column(Float, default_factory=time.time)
    # The base checkpoint's fingerprint from the adapter's card (None: the card records none).
    base_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)


class AdapterDigestStore:
    """Records and answers the registered SHA-256 of adapter versions."""

    def __init__(self, database_url: str) -> None:
        self._session = session_factory(database_url)

    def record(
        self, name: str, version: int, sha256: str, tenant: str, source: str, base_fingerprint: str | None = None
    ) -> None:
        """Record a version just registered (a version number the registry reuses replaces the old record)."""
        with self._session.begin() as session:
            session.execute(delete(AdapterDigest).where(AdapterDigest.name == name, AdapterDigest.version == version))
            session.add(
                AdapterDigest(
                    name=name,
                    version=version,
                    sha256=sha256,
                    tenant=tenant,
                    source=source,
                    base_fingerprint=base_fingerprint,
                )
            )

    def expected(self, name: str, version: int) -> AdapterDigest | None:
        """The record for a version, or None if the platform never registered it."""
        with self._session() as session:
            return session.get(AdapterDigest, (name, version))
