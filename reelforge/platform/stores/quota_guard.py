"""Count-and-insert that cannot overshoot a tenant's quota, however many requests race.

The new row is written first and the tenant's active rows counted after it, in one transaction:
- SQLite has one writer at a time, and a transaction whose first statement is the write reads
  only after it holds the write lock, so every racing insert sees all the others that committed;
- PostgreSQL (READ COMMITTED) would let two transactions miss each other's uncommitted rows, so
  the transaction first takes an advisory lock for (kind, tenant), held until it commits.
A transaction that finds the tenant over its quota rolls back, leaving nothing behind.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.orm import Session

from reelforge.platform.stores.database import Base


class QuotaExceeded(Exception):
    """The tenant already had `active` rows counted against a quota of `limit`."""

    def __init__(self, active: int, limit: int) -> None:
        super().__init__(f"{active} active of {limit}")
        self.active = active
        self.limit = limit


def _lock_key(kind: str, tenant: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory locks (CRC-32 of each part, side by side)."""
    key = (zlib.crc32(kind.encode()) << 32) | zlib.crc32(tenant.encode())
    return key - (1 << 64) if key >= 1 << 63 else key


def insert_within_quota(
    session: Session, row: Base, kind: str, tenant: str, limit: int, count_active: Callable[[Session], int]
) -> None:
    """Add `row` in `session`'s transaction if the tenant's active rows, `row` included, stay within `limit`.

    Raises QuotaExceeded (the caller's `with session.begin()` then rolls the insert back).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(kind, tenant)})
    session.add(row)
    session.flush()  # the write comes first: on SQLite it takes the write lock before the count reads
    active = count_active(session)
    if active > limit:
        raise QuotaExceeded(active - 1, limit)
