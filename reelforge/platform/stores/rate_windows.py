"""Per-tenant quotas: generation requests per minute (a fixed window counted in the database, so
every ingress replica shares it) and concurrent jobs (queued plus running, read from the job store).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from sqlalchemy import Float, Integer, String, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from reelforge.errors import RateLimitError
from reelforge.platform.stores.database import Base, session_factory

WINDOW_S = 60.0


class RateWindow(Base):
    """A tenant's request count in its current fixed window."""

    __tablename__ = "rate_windows"

    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    window_start: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class WindowState:
    """Where a tenant stands in the current window after this request."""

    limit: int
    used: int
    reset_s: float

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def allowed(self) -> bool:
        return self.used <= self.limit

    def headers(self) -> dict[str, str]:
        """OpenAI's `x-ratelimit-*` headers for requests."""
        return {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.remaining),
            "x-ratelimit-reset-requests": f"{max(0.0, self.reset_s):.0f}s",
        }


def window_start_for(now: float, window_s: float = WINDOW_S) -> float:
    """The start of the fixed window holding `now`."""
    return math.floor(now / window_s) * window_s


class RequestRateLimiter:
    """Counts a tenant's generation requests per fixed one-minute window."""

    def __init__(self, database_url: str, window_s: float = WINDOW_S) -> None:
        self._session = session_factory(database_url)
        self.window_s = window_s

    def hit(self, tenant: str, limit: int, now: float | None = None) -> WindowState:
        """Count one request and return the window state (the request is refused if not `allowed`)."""
        now = time.time() if now is None else now
        start = window_start_for(now, self.window_s)
        with self._session.begin() as session:
            # Reset a stale window and count in one guarded UPDATE so concurrent replicas never lose a hit.
            session.execute(
                update(RateWindow)
                .where(RateWindow.tenant == tenant, RateWindow.window_start < start)
                .values(window_start=start, count=0)
            )
            counted = session.execute(
                update(RateWindow).where(RateWindow.tenant == tenant).values(count=RateWindow.count + 1)
            ).rowcount
            if not counted:
                try:
                    with session.begin_nested():
                        session.add(RateWindow(tenant=tenant, window_start=start, count=1))
                except IntegrityError:
                    session.execute(
                        update(RateWindow).where(RateWindow.tenant == tenant).values(count=RateWindow.count + 1)
                    )
            used = session.get(RateWindow, tenant).count
        return WindowState(limit=limit, used=used, reset_s=start + self.window_s - now)

    def check(self, tenant: str, limit: int, now: float | None = None) -> WindowState:
        """Count a request; RateLimitError with Retry-After when the window is used up."""
        state = self.hit(tenant, limit, now)
        if not state.allowed:
            raise RateLimitError(
                f"rate limit reached for tenant {tenant!r}: {limit} video requests per minute; "
                f"retry in {math.ceil(state.reset_s)}s",
                retry_after_s=math.ceil(state.reset_s),
                headers=state.headers(),
            )
        return state


def check_concurrency(tenant: str, active: int, limit: int, retry_after_s: int = 5) -> None:
    """Refuse a new job when `active` jobs already fill the tenant's concurrency quota."""
    if active >= limit:
        raise RateLimitError(
            f"tenant {tenant!r} already has {active} videos queued or in progress (limit {limit}); "
            "wait for one to finish",
            retry_after_s=retry_after_s,
        )
