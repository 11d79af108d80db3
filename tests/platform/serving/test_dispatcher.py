"""The dispatcher's bookkeeping, isolated from Ray Serve by a stand-in deployment handle (the real
handle path is covered end to end in test_videos_api and test_serve_restart): capacity, the
adapter as multiplexed id, release and retry after a back-off when a replica dies, a poison job that
fails after its attempts, and expiry clean-up of every attempt's files."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from reelforge.platform.serving.dispatcher import JobDispatcher
from reelforge.platform.stores.blob_store import BlobStore
from reelforge.platform.stores.video_jobs import FAILED, QUEUED, RetryPolicy, VideoJob, VideoJobStore
from tests.harness import video_job

DEPLOYMENT = "generator-reelforge-tiny"


class StandInHandle:
    """Records calls like a DeploymentHandle; `fail` makes `generate` raise as a dead replica would."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[str | None, str]] = []
        self.release = asyncio.Event()
        self._model_id: str | None = None

    def options(self, multiplexed_model_id: str) -> StandInHandle:
        routed = StandInHandle(self.fail)
        routed.calls, routed.release, routed._model_id = self.calls, self.release, multiplexed_model_id
        return routed

    @property
    def generate(self):
        return self

    def remote(self, video_id: str, fence: int):
        self.calls.append((self._model_id, video_id))
        return self._finish()

    async def _finish(self) -> None:
        await self.release.wait()
        if self.fail:
            raise RuntimeError("ActorDiedError: the replica died")


@pytest.fixture
def stores(tmp_path: Path) -> tuple[VideoJobStore, BlobStore]:
    retry = RetryPolicy(max_attempts=2, backoff_s=3600)
    return VideoJobStore(f"sqlite:///{tmp_path / 'jobs.db'}", retry), BlobStore(str(tmp_path / "blobs"))


def back_off_elapses(jobs: VideoJobStore, video_id: str) -> None:
    """Move the job's next attempt to now (the test's stand-in for an hour of waiting)."""
    with jobs._session.begin() as session:
        session.get(VideoJob, video_id).next_attempt_at = time.time() - 1


def new(adapter: str | None = None) -> VideoJob:
    return video_job(deployment=DEPLOYMENT, adapter=adapter)


def test_sends_up_to_capacity_with_the_adapter_as_multiplexed_id(stores):
    jobs, blobs = stores

    async def scenario():
        handle = StandInHandle()
        dispatcher = JobDispatcher(jobs, blobs, {DEPLOYMENT: handle}, {DEPLOYMENT: 2}, lease_s=60, interval_s=0.1)
        ids = [jobs.create(new(adapter="acme.brand.reelforge-tiny/3")).id, jobs.create(new()).id, jobs.create(new()).id]
        assert await dispatcher.dispatch_once() == 2
        await asyncio.sleep(0)  # let the send tasks reach the handle
        assert handle.calls == [("acme.brand.reelforge-tiny/3", ids[0]), (None, ids[1])]
        assert await dispatcher.dispatch_once() == 0  # full: the third waits in the store
        return ids

    ids = asyncio.run(scenario())
    assert jobs.peek(ids[2]).lease_owner is None


def test_a_dead_replica_releases_the_job_for_a_retry_then_fails_it(stores):
    jobs, blobs = stores
    after_first: list = []

    async def scenario():
        handle = StandInHandle(fail=True)
        dispatcher = JobDispatcher(jobs, blobs, {DEPLOYMENT: handle}, {DEPLOYMENT: 1}, lease_s=60, interval_s=0.1)
        video_id = jobs.create(new()).id
        for attempt in (1, 2):
            assert await dispatcher.dispatch_once() == 1
            claim = jobs.peek(video_id)
            jobs.start(video_id, claim.fence, f"replica-{attempt}", lease_s=60)  # the replica began ...
            handle.release.set()  # ... then died
            await dispatcher.drain()
            handle.release.clear()
            after_first.append(jobs.peek(video_id))
            assert await dispatcher.dispatch_once() == 0  # backing off before the next attempt
            back_off_elapses(jobs, video_id)
        return video_id

    video_id = asyncio.run(scenario())
    first = after_first[0]
    assert (first.status, first.lease_owner, first.attempts) == (QUEUED, None, 1)  # back in the queue for a retry
    job = jobs.peek(video_id)
    assert job.status == FAILED and "interrupted 2 times" in job.error_message and "replica died" in job.error_message


def test_a_poison_job_fails_after_max_attempts_and_frees_the_tenants_slot(stores):
    """Its adapter's artifact is gone: every call fails before the replica starts it."""
    jobs, blobs = stores
    claims: list[tuple[int, int]] = []

    async def scenario():
        handle = StandInHandle(fail=True)
        handle.release.set()  # every call fails at once, as a failed adapter download does
        dispatcher = JobDispatcher(jobs, blobs, {DEPLOYMENT: handle}, {DEPLOYMENT: 4}, lease_s=60, interval_s=0.1)
        poison = jobs.create(new(adapter="acme.brand.reelforge-tiny/9")).id
        while jobs.peek(poison).status == QUEUED:
            sent = await dispatcher.dispatch_once()
            await dispatcher.drain()
            if sent:
                claims.append((jobs.peek(poison).attempts, jobs.peek(poison).fence))
            assert await dispatcher.dispatch_once() == 0  # a failed attempt is never retried at once
            back_off_elapses(jobs, poison)
        return poison

    poison = asyncio.run(scenario())
    job = jobs.peek(poison)
    assert claims == [(1, 1), (2, 2)]
    assert (job.status, job.error_code) == (FAILED, "generation_interrupted")
    assert "ActorDiedError" in job.error_message and jobs.count_active("acme") == 0


def test_expired_and_deleted_videos_lose_their_files(stores):
    jobs, blobs = stores
    expired, kept = jobs.create(new()), jobs.create(new())
    for job, ttl in ((expired, -1), (kept, 3600)):
        (claim,) = jobs.claim("d", DEPLOYMENT, 1, lease_s=60)
        jobs.start(job.id, claim.fence, "r", 60)
        blobs.put("acme", job.id, "video", b"mp4", fence=claim.fence)
        blobs.put("acme", job.id, "video", b"a superseded attempt's", fence=claim.fence + 7)
        jobs.complete(job.id, claim.fence, time.time() + ttl, {})
    dispatcher = JobDispatcher(jobs, blobs, {}, {}, lease_s=60, interval_s=0.1)
    assert dispatcher.remove_expired_files() == 1
    assert not blobs.exists("acme", expired.id, fence=1) and not blobs.exists("acme", expired.id, fence=8)
    assert blobs.read("acme", kept.id, fence=1) == b"mp4"
    assert jobs.peek(expired.id).files_removed
