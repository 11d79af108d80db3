"""Idempotency keys: a client's retry of a create (`Idempotency-Key` header) gets the first response.

The first request with a key holds it (a row without a response) while it runs, then stores its
response. Within `IDEMPOTENCY_TTL_S` the same key and the same request replay that response; the
same key with a different request, or while the first is still running, is a 409. A request that
fails releases its key, so the client's retry runs again. Keys are scoped by tenant and operation.

A key held longer than its operation can take (`takeover_after_s`: PENDING_TAKEOVER_S for a video
or fine-tuning create, longer for an upload's validation) belongs to a request whose server died
mid-way; the next retry takes it over instead of getting 409s for a day. Video and fine-tuning
creates make that safe by deriving their ids from the key: a rerun finds what the dead one made.
"""

from __future__ import annotations

import time

from sqlalchemy import JSON, Float, Integer, String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from reelforge.errors import UserInputError
from reelforge.platform.stores.database import Base, session_factory

IDEMPOTENCY_TTL_S = 24 * 3600.0
PENDING_TAKEOVER_S = 120.0  # far longer than a video or fine-tuning create takes


class IdempotencyConflictError(UserInputError):
    """The key was used for a different request, or its first request has not finished."""

    http_status = 409
    code = "idempotency_key_conflict"


class IdempotentRequest(Base):
    """One key's first request: its fingerprint and, once it finished, the response it got."""

    __tablename__ = "idempotency_keys"

    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    operation: Mapped[str] = mapped_column(String(40), primary_key=True)  # e.g. "videos.create"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float, index=True, default_factory=time.time)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)  # None while it runs
    response: Mapped[dict | None] = mapped_column(JSON, nullable=True, default=None)


class IdempotencyStore:
    """Hold, complete, replay and release idempotency keys in the platform database."""

    def __init__(self, database_url: str, ttl_s: float = IDEMPOTENCY_TTL_S) -> None:
        self._session = session_factory(database_url)
        self.ttl_s = ttl_s

    def begin(
        self,
        tenant: str,
        operation: str,
        key: str,
        request_sha256: str,
        takeover_after_s: float = PENDING_TAKEOVER_S,
    ) -> IdempotentRequest | None:
        """None: this request runs and now holds the key; otherwise the finished first request to replay.

        A key still held after `takeover_after_s` (longer than the operation can run) is taken over.
        """
        now = time.time()
        where = (
            IdempotentRequest.tenant == tenant,
            IdempotentRequest.operation == operation,
            IdempotentRequest.key == key,
        )
        with self._session.begin() as session:  # an expired key is free again
            session.execute(delete(IdempotentRequest).where(*where, IdempotentRequest.created_at < now - self.ttl_s))
        try:
            with self._session.begin() as session:
                session.add(
                    IdempotentRequest(tenant=tenant, operation=operation, key=key, request_sha256=request_sha256)
                )
            return None
        except IntegrityError:
            pass  # another request holds or held the key
        with self._session() as session:
            first = session.scalar(select(IdempotentRequest).where(*where))
        if first is None:  # released between our insert and this read: the client may simply retry
            raise IdempotencyConflictError(
                "a request with this Idempotency-Key just failed; retry it", param="Idempotency-Key"
            )
        if first.request_sha256 != request_sha256:
            raise IdempotencyConflictError(
                "this Idempotency-Key was already used with a different request; use a new key for a new request",
                param="Idempotency-Key",
            )
        if first.status_code is None and first.created_at < now - takeover_after_s:
            with self._session.begin() as session:  # compare-and-set: of two retries, one takes it over
                taken = session.execute(
                    update(IdempotentRequest)
                    .where(
                        *where,
                        IdempotentRequest.status_code.is_(None),
                        IdempotentRequest.created_at == first.created_at,
                    )
                    .values(created_at=now)
                ).rowcount
            if taken:
                return None
        if first.status_code is None:
            raise IdempotencyConflictError(
                "a request with this Idempotency-Key is still in progress; retry when it has finished",
                param="Idempotency-Key",
            )
        return first

    def finish(self, tenant: str, operation: str, key: str, status_code: int, response: dict) -> None:
        """Store the first request's response for replays."""
        with self._session.begin() as session:
            session.execute(
                update(IdempotentRequest)
                .where(
                    IdempotentRequest.tenant == tenant,
                    IdempotentRequest.operation == operation,
                    IdempotentRequest.key == key,
                )
                .values(status_code=status_code, response=response)
            )

    def release(self, tenant: str, operation: str, key: str) -> None:
        """Free a key whose request failed, so a retry runs again."""
        with self._session.begin() as session:
            session.execute(
                delete(IdempotentRequest).where(
                    IdempotentRequest.tenant == tenant,
                    IdempotentRequest.operation == operation,
                    IdempotentRequest.key == key,
                    IdempotentRequest.status_code.is_(None),
                )
            )
