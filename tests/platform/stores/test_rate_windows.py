"""Per-tenant quotas: a fixed one-minute window counted in the database, and concurrent jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelforge.errors import RateLimitError
from reelforge.platform.stores.rate_windows import (
    RequestRateLimiter,
    check_concurrency,
    window_start_for,
)


def test_window_start_is_the_minute_boundary():
    assert window_start_for(125.0) == 120.0 and window_start_for(120.0) == 120.0


def test_requests_over_the_limit_get_429_with_retry_after(tmp_path: Path):
    limiter = RequestRateLimiter(f"sqlite:///{tmp_path / 'rates.db'}")
    states = [limiter.check("acme", 2, now=130.0), limiter.check("acme", 2, now=140.0)]
    assert [s.remaining for s in states] == [1, 0]
    assert states[0].headers() == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "50s",
    }
    with pytest.raises(RateLimitError) as info:
        limiter.check("acme", 2, now=170.5)
    assert info.value.http_status == 429 and info.value.retry_after_s == 10
    assert info.value.headers["Retry-After"] == "10" and info.value.headers["x-ratelimit-remaining-requests"] == "0"
    assert limiter.check("globex", 2, now=170.5).remaining == 1  # tenants count separately
    assert limiter.check("acme", 2, now=180.0).remaining == 1  # a new window starts afresh


def test_concurrency_quota():
    check_concurrency("acme", active=1, limit=2)
    with pytest.raises(RateLimitError, match="already has 2 videos queued or in progress"):
        check_concurrency("acme", active=2, limit=2, retry_after_s=3)
