"""The job store's guarantees, on a real SQLite database: tenant scoping, pagination, atomic claims,
and leases that bring back jobs whose server or replica went away."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reelforge.errors import NotFoundError
from reelforge.platform.stores.video_jobs import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    QUEUED,
    VideoJob,
    VideoJobStore,
)


@pytest.fixture
def jobs(tmp_path: Path) -> VideoJobStore:
    return VideoJobStore(f"sqlite:///{tmp_path / 'jobs.db'}", max_attempts=2)


def new(
    tenant: str = "acme",
    deployment: str = "generator-reelforge-tiny",
    seed: int = 0,
    base_model: str = "reelforge-tiny",
) -> VideoJob:
    return VideoJob(
        tenant=tenant,
        model="reelforge-tiny",
        base_model=base_model,
        adapter=None,
        deployment=deployment,
        prompt="a red circle",
        seconds="2",
        size="32x32",
        num_frames=17,
        fps=8.0,
        seed=seed,
    )


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


def test_claims_never_overlap_and_respect_the_deployment(jobs):
    ids = [jobs.create(new(seed=i)).id for i in range(4)]
    jobs.create(new(deployment="generator-reelforge-tiny-vip"))
    first = jobs.claim("a", "generator-reelforge-tiny", 3, lease_s=60)
    second = jobs.claim("b", "generator-reelforge-tiny", 3, lease_s=60)
    assert [j.id for j in first] == ids[:3] and [j.id for j in second] == ids[3:]
    assert jobs.claim("c", "generator-reelforge-tiny", 3, lease_s=60) == []
    assert len(jobs.claim("c", "generator-reelforge-tiny-vip", 3, lease_s=60)) == 1


def test_expired_leases_requeue_then_fail_after_max_attempts(jobs):
    job = jobs.create(new())
    jobs.claim("dispatcher", "generator-reelforge-tiny", 1, lease_s=60)
    # A negative lease is one that already ran out: the replica went silent.
    assert jobs.start(job.id, "replica-1", lease_s=-1).status == IN_PROGRESS
    jobs.report_progress(job.id, 40, lease_s=-1)
    assert jobs.recover_expired_leases() == [job.id]
    requeued = jobs.peek(job.id)
    assert (requeued.status, requeued.progress, requeued.lease_owner, requeued.attempts) == (QUEUED, 0, None, 1)
    jobs.claim("dispatcher", "generator-reelforge-tiny", 1, lease_s=60)
    jobs.start(job.id, "replica-2", lease_s=-1)
    jobs.recover_expired_leases()
    failed = jobs.peek(job.id)
    assert (
        failed.status == FAILED and failed.error_code == "generation_interrupted" and "2 times" in failed.error_message
    )


def test_renewed_leases_survive_and_completion_is_final(jobs):
    job = jobs.create(new())
    jobs.claim("dispatcher", "generator-reelforge-tiny", 1, lease_s=-1)
    jobs.renew_leases([job.id], "dispatcher", lease_s=60)
    assert jobs.recover_expired_leases() == []
    jobs.start(job.id, "replica-1", lease_s=60)
    done = jobs.complete(job.id, expires_at=time.time() + 60, timings={"generate_s": 1.0})
    assert done.status == COMPLETED and done.progress == 100 and done.lease_owner is None
    assert jobs.start(job.id, "replica-2", lease_s=60) is None  # a duplicate dispatch does not rerun it
    assert jobs.count_active("acme") == 0


def test_expired_and_deleted_videos_are_listed_for_file_removal(jobs):
    expired, deleted, fresh = (jobs.create(new(seed=i)) for i in range(3))
    for job, ttl in ((expired, -1), (deleted, 60), (fresh, 60)):
        jobs.start(job.id, "r", 60)
        jobs.complete(job.id, time.time() + ttl, {})
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
    assert jobs.start(job.id, "replica", lease_s=60) is None


def test_jobs_of_a_removed_deployment_move_to_the_shared_one_or_fail(jobs):
    served = jobs.create(new(deployment="generator-reelforge-tiny-former-vip"))
    unserved = jobs.create(new(base_model="retired-model", deployment="generator-retired-model"))
    moved, failed = jobs.reroute({"generator-reelforge-tiny"}, {"reelforge-tiny": "generator-reelforge-tiny"})
    assert (moved, failed) == (1, 1)
    assert jobs.peek(served.id).deployment == "generator-reelforge-tiny" and jobs.peek(served.id).status == QUEUED
    assert jobs.peek(unserved.id).status == FAILED and "no longer served" in jobs.peek(unserved.id).error_message
