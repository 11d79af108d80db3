"""Idempotency keys: a client's retry of a create (`Idempotency-Key` header) gets the first response.

The first request with a key holds it (a row without a response) while it runs, then stores its
response. Within `IDEMPOTENCY_TTL_S` the same key and the same request replay that response; the
same key with a different request, or while the first is still running, is a 409. A request that
fails releases its key, so the client's retry runs again. Keys are scoped by tenant and operation.

A hold is a lease: its request renews it while it runs (`renew`), so a slow request keeps its key
however long it takes, while a key left unrenewed for `lease_s` belongs to a request whose server
died, and the next retry takes it over within seconds instead of getting 409s until some worst-case
timeout. Video and fine-tuning creates make a takeover safe by deriving their ids from the key: a
rerun finds what the dead one made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import JSON, Float, Integer, String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from reelforge.errors import UserInputError
from reelforge.platform.stores.database import Base, session_factory

IDEMPOTENCY_TTL_S = 24 * 3600.0


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
    # When the running request last renewed its hold (None: not since it was taken).
    renewed_at: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    response: Mapped[dict | None] = mapped_column(JSON, nullable=True, default=None)


@dataclass(frozen=True)
class KeyHold:
    """This request holds the key. `since` (the row's `created_at`) tells this hold from a later
    takeover's: renewing, finishing or releasing a hold that was taken over changes nothing."""

    tenant: str
    operation: str
    key: str
    since: float


class IdempotencyStore:
    """Hold, complete, replay and release idempotency keys in the platform database."""

    def __init__(self, database_url: str, ttl_s: float = IDEMPOTENCY_TTL_S) -> None:
        self._session = session_factory(database_url)
        self.ttl_s = ttl_s

    def begin(
        self, tenant: str, operation: str, key: str, request_sha256: str, lease_s: float
    ) -> KeyHold | IdempotentRequest:
        """A KeyHold when this request runs (it must `renew` it at well under `lease_s`), or the
        finished first request to replay. A key left unrenewed for `lease_s` is taken over."""
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
                    IdempotentRequest(
                        tenant=tenant, operation=operation, key=key, request_sha256=request_sha256, created_at=now
                    )
                )
            return KeyHold(tenant, operation, key, now)
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
        last_heard = first.renewed_at if first.renewed_at is not None else first.created_at
        if first.status_code is None and last_heard < now - lease_s:
            with self._session.begin() as session:  # compare-and-set: of two retries, one takes it over
                taken = session.execute(
                    update(IdempotentRequest)
                    .where(
                        *where,
                        IdempotentRequest.status_code.is_(None),
                        IdempotentRequest.created_at == first.created_at,
                        IdempotentRequest.renewed_at.is_not_distinct_from(first.renewed_at),
                    )
                    .values(created_at=now, renewed_at=None)
                ).rowcount
            if taken:
                return KeyHold(tenant, operation, key, now)
        if first.status_code is None:
            raise IdempotencyConflictError(
                "a request with this Idempotency-Key is still in progress; retry when it has finished",
                param="Idempotency-Key",
            )
        return first

    def renew(self, hold: KeyHold) -> bool:
        """Say the holder is still running; False when its hold was taken over (it may finish anyway)."""
        with self._session.begin() as session:
            return bool(
                session.execute(update(IdempotentRequest).where(*_held(hold)).values(renewed_at=time.time())).rowcount
            )

    def finish(self, hold: KeyHold, status_code: int, response: dict) -> None:
        """Store the first request's response for replays (unless its hold was taken over)."""
        with self._session.begin() as session:
            session.execute(
                update(IdempotentRequest).where(*_held(hold)).values(status_code=status_code, response=response)
            )

    def release(self, hold: KeyHold) -> None:
        """Free a key whose request failed, so a retry runs again (unless its hold was taken over)."""
        with self._session.begin() as session:
            session.execute(delete(IdempotentRequest).where(*_held(hold)))


def _held(hold: KeyHold) -> tuple:
    """The row as `hold` took it: still running, not taken over since."""
    return (
        IdempotentRequest.tenant == hold.tenant,
        IdempotentRequest.operation == hold.operation,
        IdempotentRequest.key == hold.key,
        IdempotentRequest.status_code.is_(None),
        IdempotentRequest.created_at == hold.since,
    )
