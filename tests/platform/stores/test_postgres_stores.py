"""The same stores on the local PostgreSQL server (the cluster's database): a fresh database per
test, so concurrent claims, rate windows, key lookups and Idempotency-Key takeovers are checked on a
real server, not SQLite."""

from __future__ import annotations

import threading
import time

from sqlalchemy import update

from reelforge.platform.stores.idempotency_keys import (
    IdempotencyConflictError,
    IdempotencyStore,
    IdempotentRequest,
    KeyHold,
)
from reelforge.platform.stores.rate_windows import RequestRateLimiter
from reelforge.platform.stores.tenants import TenantStore
from reelforge.platform.stores.video_jobs import VideoJob, VideoJobStore


def test_concurrent_dispatchers_never_claim_the_same_job(postgres_url):
    jobs = VideoJobStore(postgres_url)
    for i in range(40):
        jobs.create(
            VideoJob(
                tenant="acme",
                model="reelforge-tiny",
                base_model="reelforge-tiny",
                adapter=None,
                deployment="generator-reelforge-tiny",
                prompt="p",
                seconds="2",
                size="32x32",
                num_frames=17,
                fps=8.0,
                seed=2**31 - 1 - i,
            )
        )
    claimed: dict[str, list[str]] = {}

    def dispatcher(owner: str) -> None:
        mine = []
        while batch := jobs.claim(owner, "generator-reelforge-tiny", 3, lease_s=60):
            mine.extend(j.id for j in batch)
        claimed[owner] = mine

    threads = [threading.Thread(target=dispatcher, args=(f"d{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_ids = [v for ids in claimed.values() for v in ids]
    assert len(all_ids) == len(set(all_ids)) == 40


def test_keys_and_rate_windows_on_postgres(postgres_url):
    tenants = TenantStore(postgres_url)
    _, key = tenants.create("acme", requests_per_minute=3)
    assert tenants.authenticate(f"Bearer {key}").requests_per_minute == 3
    limiter = RequestRateLimiter(postgres_url)
    results = []

    def hit() -> None:
        results.append(limiter.hit("acme", 3, now=600.0).used)

    threads = [threading.Thread(target=hit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [1, 2, 3, 4, 5, 6]  # no lost counts under concurrent replicas


def test_of_concurrent_retries_of_a_silent_key_one_takes_it_over(postgres_url):
    store = IdempotencyStore(postgres_url)
    dead = store.begin("acme", "videos.create", "crashed", "same", lease_s=10)
    assert store.renew(dead)
    with store._session.begin() as session:  # its server died 20 s ago: no renewal since
        session.execute(update(IdempotentRequest).values(renewed_at=time.time() - 20))
    outcomes = []

    def retry() -> None:
        try:
            outcomes.append(store.begin("acme", "videos.create", "crashed", "same", lease_s=10))
        except IdempotencyConflictError:
            outcomes.append("409")

    threads = [threading.Thread(target=retry) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    holds = [o for o in outcomes if isinstance(o, KeyHold)]
    assert len(holds) == 1 and outcomes.count("409") == 5, outcomes  # the compare-and-set lets one through
    assert store.renew(holds[0]) and not store.renew(dead)
