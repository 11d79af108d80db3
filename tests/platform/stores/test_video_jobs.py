"""The job store's guarantees, on a real SQLite database: tenant scoping, pagination, atomic claims,
leases that bring back jobs whose server or replica went away (after a back-off, for a bounded
number of attempts), and fencing tokens that stop a superseded attempt from writing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reelforge.errors import NotFoundError
from reelforge.platform.stores.usage import GENERATION, UsageMeter, usage_record
from reelforge.platform.stores.video_jobs import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    QUEUED,
    RetryPolicy,
    VideoJob,
    VideoJobStore,
)
from tests.harness import video_job


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture
def jobs(database_url: str) -> VideoJobStore:
    return VideoJobStore(database_url, RetryPolicy(max_attempts=2, backoff_s=0))


def new(
    tenant: str = "acme",
    deployment: str = "generator-reelforge-tiny",
    seed: int = 0,
    base_model: str = "reelforge-tiny",
) -> VideoJob:
    return video_job(tenant, deployment, seed=seed, base_model=base_model)


def test_reads_are_scoped_to_the_tenant(jobs):
    job = jobs.create(new("acme"))
    assert job.id.startswith("video_") and job.status == QUEUED
    assert jobs.get("acme", job.id).prompt == "a red circle"
    for tenant in ("globex", "acme-labs"):
        with pytest.raises(NotFoundError):
            jobs.get(tenant, job.id)
        with pytest.raises(NotFoundError):
            jobs.delete(tenant, job.id)
    assert jobs.list("globex") == ([], False)
    jobs.delete("acme", job.id)
    with pytest.raises(NotFoundError):
        jobs.get("acme", job.id)


def test_pagination_is_stable_in_both_orders(jobs):
    ids = [jobs.create(new(seed=i)).id for i in range(5)]
    page, more = jobs.list("acme", limit=2)
    assert [j.id for j in page] == ids[::-1][:2] and more
    page, more = jobs.list("acme", after=page[-1].id, limit=2)
    assert [j.id for j in page] == ids[::-1][2:4] and more
    page, more = jobs.list("acme", after=page[-1].id, limit=2)
    assert [j.id for j in page] == [ids[0]] and not more
    assert [j.id for j in jobs.list("acme", order="asc", limit=10)[0]] == ids


def claim_one(jobs: VideoJobStore, owner: str = "dispatcher", lease_s: float = 60) -> VideoJob:
    (job,) = jobs.claim(owner, "generator-reelforge-tiny", 1, lease_s=lease_s)
    return job


def test_claims_never_overlap_and_respect_the_deployment(jobs):
    ids = [jobs.create(new(seed=i)).id for i in range(4)]
    jobs.create(new(deployment="generator-reelforge-tiny-vip"))
    first = jobs.claim("a", "generator-reelforge-tiny", 3, lease_s=60)
    second = jobs.claim("b", "generator-reelforge-tiny", 3, lease_s=60)
    assert [j.id for j in first] == ids[:3] and [j.id for j in second] == ids[3:]
    assert jobs.claim("c", "generator-reelforge-tiny", 3, lease_s=60) == []
    assert len(jobs.claim("c", "generator-reelforge-tiny-vip", 3, lease_s=60)) == 1
    assert {(j.fence, j.attempts, j.lease_owner) for j in first} == {(1, 1, "a")}  # a claim is an attempt


def test_expired_leases_requeue_after_a_back_off_then_fail_after_max_attempts(database_url):
    jobs = VideoJobStore(database_url, RetryPolicy(max_attempts=2, backoff_s=3600, backoff_max_s=7200))
    job = jobs.create(new())
    claim = claim_one(jobs)
    # A negative lease is one that already ran out: the replica went silent.
    assert jobs.start(job.id, claim.fence, "replica-1", lease_s=-1).status == IN_PROGRESS
    jobs.report_progress(job.id, claim.fence, 40, lease_s=-1)
    assert jobs.recover_expired_leases() == [job.id]
    requeued = jobs.peek(job.id)
    assert (requeued.status, requeued.progress, requeued.lease_owner, requeued.attempts) == (QUEUED, 0, None, 1)
    assert requeued.next_attempt_at == pytest.approx(time.time() + 3600, abs=60)
    assert jobs.claim("dispatcher", "generator-reelforge-tiny", 1, lease_s=60) == []  # backing off
    with jobs._session.begin() as session:  # the back-off elapses
        session.get(VideoJob, job.id).next_attempt_at = time.time() - 1
    claim = claim_one(jobs)
    assert (claim.fence, claim.attempts) == (2, 2)
    jobs.recover_expired_leases()  # claimed, never started: the lease still runs out
    assert jobs.recover_expired_leases() == []
    with jobs._session.begin() as session:
        session.get(VideoJob, job.id).lease_until = time.time() - 1
    jobs.recover_expired_leases()
    failed = jobs.peek(job.id)
    assert (failed.status, failed.error_code) == (FAILED, "generation_interrupted")
    assert "2 times" in failed.error_message and failed.next_attempt_at is None


def test_a_superseded_attempt_can_no_longer_write(jobs, database_url):
    job = jobs.create(new())
    old = claim_one(jobs, "d1", lease_s=-1)
    assert jobs.start(job.id, old.fence, "replica-1", lease_s=-1) is not None
    assert jobs.recover_expired_leases() == [job.id]  # replica-1 stalled; the job is retried
    with jobs._session.begin() as session:
        session.get(VideoJob, job.id).next_attempt_at = None
    current = claim_one(jobs, "d2")
    assert current.fence == old.fence + 1
    assert jobs.start(job.id, current.fence, "replica-2", lease_s=60) is not None
    # replica-1 wakes up: every write of its claim is refused, and replica-2's stand.
    assert not jobs.report_progress(job.id, old.fence, 90, lease_s=60)
    assert not jobs.renew(job.id, old.fence, lease_s=60)
    stale_usage = usage_record("acme", GENERATION, job.id, "m", None, "cpu", 1.0, 17)
    assert jobs.complete(job.id, old.fence, time.time() + 60, {}, records=[stale_usage]) is None
    assert not jobs.fail(job.id, "generation_failed", "boom", fence=old.fence)
    jobs.release(job.id, old.fence, "its call failed")
    assert (jobs.peek(job.id).status, jobs.peek(job.id).replica) == (IN_PROGRESS, "replica-2")
    usage = usage_record("acme", GENERATION, job.id, "m", None, "cpu", 2.0, 17)
    done = jobs.complete(job.id, current.fence, time.time() + 60, {"generate_s": 2.0}, records=[usage])
    assert done.status == COMPLETED and done.fence == current.fence
    assert [(u.jobs, u.seconds) for u in UsageMeter(database_url).summary("acme")] == [(1, 2.0)]


def test_renewed_leases_survive_and_completion_is_final(jobs):
    job = jobs.create(new())
    claim = claim_one(jobs, lease_s=-1)
    jobs.renew_leases({job.id: claim.fence - 1}, "dispatcher", lease_s=60)  # an older claim renews nothing
    assert jobs.peek(job.id).lease_until < time.time()
    jobs.renew_leases({job.id: claim.fence}, "dispatcher", lease_s=60)
    assert jobs.recover_expired_leases() == []
    jobs.start(job.id, claim.fence, "replica-1", lease_s=60)
    done = jobs.complete(job.id, claim.fence, expires_at=time.time() + 60, timings={"generate_s": 1.0})
    assert done.status == COMPLETED and done.progress == 100 and done.lease_owner is None
    assert jobs.start(job.id, claim.fence, "replica-2", lease_s=60) is None  # a duplicate dispatch does not rerun it
    assert jobs.count_active("acme") == 0


def test_retry_back_off_doubles_up_to_its_cap():
    policy = RetryPolicy(max_attempts=10, backoff_s=2.0, backoff_max_s=30.0)
    assert [policy.delay_s(n) for n in range(1, 7)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert policy.delay_s(10**6) == 30.0  # no overflow however many attempts


def complete_now(jobs: VideoJobStore, job: VideoJob, ttl: float) -> None:
    claim = claim_one(jobs)
    assert claim.id == job.id
    jobs.start(job.id, claim.fence, "r", 60)
    jobs.complete(job.id, claim.fence, time.time() + ttl, {})


def test_expired_and_deleted_videos_are_listed_for_file_removal(jobs):
    expired, deleted, fresh = (jobs.create(new(seed=i)) for i in range(3))
    for job, ttl in ((expired, -1), (deleted, 60), (fresh, 60)):
        complete_now(jobs, job, ttl)
    jobs.delete("acme", deleted.id)
    assert {j.id for j in jobs.files_to_remove()} == {expired.id, deleted.id}
    jobs.mark_files_removed(expired.id)
    assert [j.id for j in jobs.files_to_remove()] == [deleted.id]


def test_deleting_a_queued_job_cancels_it_and_frees_the_quota(jobs):
    job = jobs.create(new())
    assert jobs.count_active("acme") == 1
    cancelled = jobs.delete("acme", job.id)
    assert (cancelled.status, cancelled.error_code) == (FAILED, "cancelled")
    assert jobs.count_active("acme") == 0
    assert jobs.claim("d", "generator-reelforge-tiny", 5, lease_s=60) == []
    assert jobs.start(job.id, 0, "replica", lease_s=60) is None


def test_jobs_of_a_removed_deployment_move_to_the_shared_one_or_fail(jobs):
    served = jobs.create(new(deployment="generator-reelforge-tiny-former-vip"))
    unserved = jobs.create(new(base_model="retired-model", deployment="generator-retired-model"))
    moved, failed = jobs.reroute({"generator-reelforge-tiny"}, {"reelforge-tiny": "generator-reelforge-tiny"})
    assert (moved, failed) == (1, 1)
    assert jobs.peek(served.id).deployment == "generator-reelforge-tiny" and jobs.peek(served.id).status == QUEUED
    assert jobs.peek(unserved.id).status == FAILED and "no longer served" in jobs.peek(unserved.id).error_message
