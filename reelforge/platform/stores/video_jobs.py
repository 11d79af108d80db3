"""Video jobs: every accepted request is a row before anything runs, so no accepted job is lost.

Life of a row: `queued` (accepted) -> claimed by a dispatcher (lease owner set, a new fencing
token, one more attempt; still `queued`) -> `in_progress` (a generator replica started it and
renews the lease while it runs) -> `completed` or `failed`. A lease that runs out (the server
stopped, a replica died or stalled) puts the job back to `queued` after an exponential back-off,
and after `max_attempts` claims fails it with the last reason. The fencing token makes a takeover
safe: the replica that lost the lease can no longer start, report or complete the job, so a job
completes exactly once. Every read takes the tenant: another tenant's id is simply not found."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Integer,
    String,
    Text,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from reelforge.errors import NotFoundError
from reelforge.platform.stores.database import Base, session_factory
from reelforge.platform.stores.quota_guard import insert_within_quota
from reelforge.safety.output_review import APPROVED, HELD, REJECTED

QUEUED, IN_PROGRESS, COMPLETED, FAILED = "queued", "in_progress", "completed", "failed"
ACTIVE = (QUEUED, IN_PROGRESS)


def new_video_id() -> str:
    """`video_` + 24 hex characters, unguessable."""
    return f"video_{secrets.token_hex(12)}"


class VideoJob(Base):
    """One video job: what the tenant asked for, where it runs, and how far it got."""

    __tablename__ = "videos"

    tenant: Mapped[str] = mapped_column(String(63), index=True)
    model: Mapped[str] = mapped_column(String(200))  # what the client asked for (base or ft: id)
    base_model: Mapped[str] = mapped_column(String(200))
    adapter: Mapped[str | None] = mapped_column(String(300), nullable=True)  # registry name/version
    deployment: Mapped[str] = mapped_column(String(100), index=True)  # generator deployment that runs it
    prompt: Mapped[str] = mapped_column(Text)
    seconds: Mapped[str] = mapped_column(String(8))
    size: Mapped[str] = mapped_column(String(20))
    num_frames: Mapped[int] = mapped_column(Integer)
    fps: Mapped[float] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(Integer)
    steps: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    guidance: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    # Two-expert models (Wan 2.2 A14B): the low-noise expert's scale (None: the model's default).
    guidance_2: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    negative_prompt: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    # Image-to-video: the digest of the fitted first frame stored beside the video (None: text-to-video).
    reference_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    remixed_from: Mapped[str | None] = mapped_column(String(40), nullable=True, default=None)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default_factory=new_video_id)
    status: Mapped[str] = mapped_column(String(16), index=True, default=QUEUED)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float, index=True, default_factory=time.time)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    completed_at: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    files_removed: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(80), nullable=True, index=True, default=None)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    replica: Mapped[str | None] = mapped_column(String(120), nullable=True, default=None)
    fence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # bumped by every claim
    next_attempt_at: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)  # retry back-off
    timings: Mapped[dict | None] = mapped_column(JSON, nullable=True, default=None)
    # Real-person safeguard: `held` (it shows a face; not downloadable), then `approved` or `rejected`.
    review: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True, default=None)
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)

    @property
    def downloadable(self) -> bool:
        """Completed, and not held or rejected in review."""
        return self.status == COMPLETED and self.review in (None, APPROVED)

    @property
    def width(self) -> int:
        return int(self.size.split("x")[0])

    @property
    def height(self) -> int:
        return int(self.size.split("x")[1])


@dataclass(frozen=True)
class RetryPolicy:
    """How often a job is tried, and how long a requeued job waits before its next claim."""

    max_attempts: int = 3
    backoff_s: float = 2.0
    backoff_max_s: float = 60.0

    def delay_s(self, attempts: int) -> float:
        """Exponential back-off after `attempts` tries: backoff_s, 2x, 4x, ... capped at backoff_max_s."""
        return min(self.backoff_max_s, self.backoff_s * 2 ** min(30, max(0, attempts - 1)))


def _active(session: Session, tenant: str) -> int:
    return session.scalar(
        select(func.count())
        .select_from(VideoJob)
        .where(VideoJob.tenant == tenant, VideoJob.status.in_(ACTIVE), VideoJob.deleted.is_(False))
    )


class VideoJobStore:
    """Tenant-scoped reads and the dispatch/lease writes of the `videos` table."""

    def __init__(self, database_url: str, retry: RetryPolicy | None = None) -> None:
        self._session = session_factory(database_url)
        self.retry = retry or RetryPolicy()

    # ---- the API's tenant-scoped side ------------------------------------------------------
    def create(self, job: VideoJob, max_active: int | None = None) -> VideoJob:
        """Record an accepted request as a queued job; with `max_active`, only if the tenant's queued and
        running jobs, this one included, stay within it (QuotaExceeded otherwise, nothing recorded)."""
        with self._session.begin() as session:
            if max_active is None:
                session.add(job)
            else:
                insert_within_quota(session, job, "videos", job.tenant, max_active, lambda s: _active(s, job.tenant))
        return job

    def get(self, tenant: str, video_id: str) -> VideoJob:
        """The tenant's job; NotFoundError for unknown, deleted or another tenant's ids alike."""
        with self._session() as session:
            row = session.get(VideoJob, video_id)
            if row is None or row.tenant != tenant or row.deleted:
                raise NotFoundError(f"no video with id {video_id!r}", param="video_id")
            return row

    def list(
        self, tenant: str, after: str | None = None, limit: int = 20, order: str = "desc"
    ) -> tuple[list[VideoJob], bool]:
        """One page of the tenant's videos by creation time; returns (page, has_more)."""
        newest_first = order == "desc"
        conditions = [VideoJob.tenant == tenant, VideoJob.deleted.is_(False)]
        if after is not None:
            cursor = self.get(tenant, after)
            key = (VideoJob.created_at, VideoJob.id)
            if newest_first:
                conditions.append(
                    or_(key[0] < cursor.created_at, and_(key[0] == cursor.created_at, key[1] < cursor.id))
                )
            else:
                conditions.append(
                    or_(key[0] > cursor.created_at, and_(key[0] == cursor.created_at, key[1] > cursor.id))
                )
        ordering = (
            (VideoJob.created_at.desc(), VideoJob.id.desc()) if newest_first else (VideoJob.created_at, VideoJob.id)
        )
        with self._session() as session:
            rows = session.scalars(select(VideoJob).where(*conditions).order_by(*ordering).limit(limit + 1)).all()
            return list(rows[:limit]), len(rows) > limit

    def delete(self, tenant: str, video_id: str) -> VideoJob:
        """Hide the job from its tenant and cancel it if it has not started; the caller removes finished
        jobs' files (a running job's are removed when it ends)."""
        self.get(tenant, video_id)  # scoping: another tenant's id is not found
        with self._session.begin() as session:
            session.execute(update(VideoJob).where(VideoJob.id == video_id).values(deleted=True))
            session.execute(
                update(VideoJob)
                .where(VideoJob.id == video_id, VideoJob.status == QUEUED)
                .values(
                    status=FAILED,
                    error_code="cancelled",
                    error_message="deleted before it started",
                    completed_at=time.time(),
                    lease_owner=None,
                    lease_until=None,
                )
            )
        return self.peek(video_id)

    def count_active(self, tenant: str) -> int:
        """Queued plus in-progress jobs of the tenant (the concurrency quota)."""
        with self._session() as session:
            return _active(session, tenant)

    # ---- the dispatcher's and generators' side ---------------------------------------------
    # Every write below is one conditional UPDATE: it names the state it expects and, for writes by
    # a generator, the fencing token its claim was given. A writer whose lease was taken over (it
    # stalled, its replica was thought dead) therefore changes nothing; its caller learns so from
    # the return value and stops.
    def claim(self, owner: str, deployment: str, limit: int, lease_s: float) -> list[VideoJob]:
        """Take up to `limit` queued jobs of `deployment` that are due, oldest first, each with a new fence.

        Claiming is the attempt: `attempts` counts here, so a job whose replica dies before it
        starts (while loading an adapter, say) still runs out of attempts.
        """
        if limit <= 0:
            return []
        now = time.time()
        with self._session.begin() as session:
            # SKIP LOCKED (PostgreSQL): racing dispatchers take disjoint rows instead of queueing on
            # each other's; SQLite has one writer, and the conditional UPDATE below decides there.
            candidates = session.scalars(
                select(VideoJob.id)
                .where(
                    VideoJob.deployment == deployment,
                    VideoJob.status == QUEUED,
                    VideoJob.lease_owner.is_(None),
                    VideoJob.deleted.is_(False),
                    or_(VideoJob.next_attempt_at.is_(None), VideoJob.next_attempt_at <= now),
                )
                .order_by(VideoJob.created_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            taken = []
            for video_id in candidates:
                if session.execute(
                    update(VideoJob)
                    .where(VideoJob.id == video_id, VideoJob.status == QUEUED, VideoJob.lease_owner.is_(None))
                    .values(
                        lease_owner=owner,
                        lease_until=now + lease_s,
                        fence=VideoJob.fence + 1,
                        attempts=VideoJob.attempts + 1,
                        next_attempt_at=None,
                    )
                ).rowcount:
                    taken.append(video_id)
        return [job for job in map(self.peek, taken) if job is not None]

    def reroute(self, deployments: set[str], fallback: dict[str, str]) -> tuple[int, int]:
        """Move queued jobs of deployments that no longer exist (config changed) to their base model's
        shared deployment, or fail them if that model is no longer served; returns (moved, failed)."""
        moved = failed = 0
        with self._session.begin() as session:
            orphans = session.execute(
                select(VideoJob.id, VideoJob.base_model).where(
                    VideoJob.status == QUEUED, VideoJob.lease_owner.is_(None), VideoJob.deployment.not_in(deployments)
                )
            ).all()
            for video_id, base_model in orphans:
                if base_model in fallback:
                    session.execute(
                        update(VideoJob).where(VideoJob.id == video_id).values(deployment=fallback[base_model])
                    )
                    moved += 1
                else:
                    session.execute(
                        update(VideoJob)
                        .where(VideoJob.id == video_id)
                        .values(
                            status=FAILED,
                            error_code="model_not_available",
                            completed_at=time.time(),
                            error_message=f"model {base_model} is no longer served",
                        )
                    )
                    failed += 1
        return moved, failed

    def peek(self, video_id: str) -> VideoJob | None:
        """A job by id without tenant scoping (dispatcher and generators only)."""
        with self._session() as session:
            row = session.get(VideoJob, video_id)
            return row if row is not None else None

    def start(self, video_id: str, fence: int, replica: str, lease_s: float) -> VideoJob | None:
        """Mark claim `fence` of the job in progress on `replica`; None if the job is finished or was re-claimed."""
        now = time.time()
        with self._session.begin() as session:
            updated = session.execute(
                update(VideoJob)
                .where(VideoJob.id == video_id, VideoJob.fence == fence, VideoJob.status.in_(ACTIVE))
                .values(status=IN_PROGRESS, started_at=now, replica=replica, progress=0, lease_until=now + lease_s)
            ).rowcount
        return self.peek(video_id) if updated else None

    def report_progress(self, video_id: str, fence: int, progress: int, lease_s: float) -> bool:
        """Store progress (0-99) and renew the lease; False if claim `fence` no longer holds the job."""
        with self._session.begin() as session:
            return bool(
                session.execute(
                    update(VideoJob)
                    .where(VideoJob.id == video_id, VideoJob.fence == fence, VideoJob.status == IN_PROGRESS)
                    .values(progress=min(99, max(0, int(progress))), lease_until=time.time() + lease_s)
                ).rowcount
            )

    def renew(self, video_id: str, fence: int, lease_s: float) -> bool:
        """Extend the lease of claim `fence`; False if the job is finished or was re-claimed."""
        with self._session.begin() as session:
            return bool(
                session.execute(
                    update(VideoJob)
                    .where(VideoJob.id == video_id, VideoJob.fence == fence, VideoJob.status.in_(ACTIVE))
                    .values(lease_until=time.time() + lease_s)
                ).rowcount
            )

    def complete(
        self,
        video_id: str,
        fence: int,
        expires_at: float,
        timings: dict,
        records: Sequence[Base] = (),
        held_for_review: str | None = None,
    ) -> VideoJob | None:
        """Mark the job completed by claim `fence` (its files are stored); None if that claim lost the job.

        `records` (its usage row, its audit record) are written in the same transaction, and only if
        this claim completes the job: a job is metered and audited exactly once, whatever is killed when.
        With `held_for_review` (why), the video waits for an operator's decision and its retention
        starts only once it is approved.
        """
        with self._session.begin() as session:
            updated = session.execute(
                update(VideoJob)
                .where(VideoJob.id == video_id, VideoJob.fence == fence, VideoJob.status.in_(ACTIVE))
                .values(
                    status=COMPLETED,
                    progress=100,
                    completed_at=time.time(),
                    expires_at=None if held_for_review else expires_at,
                    review=HELD if held_for_review else None,
                    review_note=held_for_review,
                    timings=timings,
                    lease_owner=None,
                    lease_until=None,
                    error_code=None,
                    error_message=None,
                )
            ).rowcount
            if updated:
                session.add_all(records)
        return self.peek(video_id) if updated else None

    # ---- the operator's review of videos that show faces -----------------------------------
    def held(self, tenant: str | None = None, limit: int = 100) -> list[VideoJob]:
        """Videos waiting for a review decision, oldest first (of one tenant, or all)."""
        conditions = [VideoJob.review == HELD, VideoJob.deleted.is_(False)]
        if tenant is not None:
            conditions.append(VideoJob.tenant == tenant)
        with self._session() as session:
            return list(
                session.scalars(select(VideoJob).where(*conditions).order_by(VideoJob.completed_at).limit(limit))
            )

    def decide_review(
        self, video_id: str, approve: bool, note: str, expires_at: float, records: Sequence[Base] = ()
    ) -> VideoJob | None:
        """Approve (retention starts: `expires_at`) or reject (its files are due for removal now) a held
        video, with `records` (its audit record) in the same transaction; None if it is not held."""
        with self._session.begin() as session:
            decided = session.execute(
                update(VideoJob)
                .where(VideoJob.id == video_id, VideoJob.review == HELD)
                .values(
                    review=APPROVED if approve else REJECTED,
                    review_note=note,
                    expires_at=expires_at if approve else time.time(),
                )
            ).rowcount
            if decided:
                session.add_all(records)
        return self.peek(video_id) if decided else None

    def fail(
        self, video_id: str, code: str, message: str, fence: int | None = None, records: Sequence[Base] = ()
    ) -> bool:
        """Mark the job failed with an error the client will see (only as claim `fence`, when given),
        with `records` (its audit record) in the same transaction; False if it had already ended."""
        conditions = [VideoJob.id == video_id, VideoJob.status.in_(ACTIVE)]
        if fence is not None:
            conditions.append(VideoJob.fence == fence)
        with self._session.begin() as session:
            failed = bool(
                session.execute(
                    update(VideoJob)
                    .where(*conditions)
                    .values(
                        status=FAILED,
                        completed_at=time.time(),
                        error_code=code,
                        error_message=message[:2000],
                        lease_owner=None,
                        lease_until=None,
                        next_attempt_at=None,
                    )
                ).rowcount
            )
            if failed:
                session.add_all(records)
        return failed

    def release(self, video_id: str, fence: int, reason: str) -> None:
        """Give claim `fence` back after its dispatch broke: retry after a back-off, or fail after `max_attempts`."""
        job = self.peek(video_id)
        if job is None or job.status not in ACTIVE or job.fence != fence:
            return
        self._requeue_or_fail(job, reason)

    def _requeue_or_fail(self, job: VideoJob, reason: str, expired_before: float | None = None) -> bool:
        if job.attempts >= self.retry.max_attempts:
            return self.fail(
                job.id,
                "generation_interrupted",
                f"generation was interrupted {job.attempts} times; last: {reason}",
                fence=job.fence,
            )
        conditions = [VideoJob.id == job.id, VideoJob.fence == job.fence, VideoJob.status.in_(ACTIVE)]
        if expired_before is not None:  # a renewal that landed since the read wins: the holder is alive
            conditions.append(VideoJob.lease_until < expired_before)
        with self._session.begin() as session:
            return bool(
                session.execute(
                    update(VideoJob)
                    .where(*conditions)
                    .values(
                        status=QUEUED,
                        progress=0,
                        lease_owner=None,
                        lease_until=None,
                        replica=None,
                        next_attempt_at=time.time() + self.retry.delay_s(job.attempts),
                    )
                ).rowcount
            )

    def recover_expired_leases(self) -> list[str]:
        """Requeue (or, out of attempts, fail) claimed or running jobs whose lease ran out."""
        now = time.time()
        with self._session() as session:
            stale = session.scalars(
                select(VideoJob).where(
                    VideoJob.status.in_(ACTIVE), VideoJob.lease_until.is_not(None), VideoJob.lease_until < now
                )
            ).all()
        reason = "its lease expired (server stopped or replica lost)"
        return [job.id for job in stale if self._requeue_or_fail(job, reason, expired_before=now)]

    def files_to_remove(self, now: float | None = None) -> list[VideoJob]:
        """Finished jobs whose files should go: expired, or deleted by their tenant."""
        now = now or time.time()
        with self._session() as session:
            rows = session.scalars(
                select(VideoJob).where(
                    VideoJob.files_removed.is_(False),
                    VideoJob.status.in_((COMPLETED, FAILED)),
                    or_(VideoJob.deleted.is_(True), and_(VideoJob.expires_at.is_not(None), VideoJob.expires_at < now)),
                )
            ).all()
            return list(rows)

    def mark_files_removed(self, video_id: str) -> None:
        """Record that a job's blobs are gone."""
        with self._session.begin() as session:
            session.execute(update(VideoJob).where(VideoJob.id == video_id).values(files_removed=True))

    def renew_leases(self, claims: dict[str, int], owner: str, lease_s: float) -> None:
        """Extend the leases of the claims (video id -> fence) `owner` is still waiting on."""
        with self._session.begin() as session:
            for video_id, fence in claims.items():
                session.execute(
                    update(VideoJob)
                    .where(
                        VideoJob.id == video_id,
                        VideoJob.fence == fence,
                        VideoJob.lease_owner == owner,
                        VideoJob.status.in_(ACTIVE),
                    )
                    .values(lease_until=time.time() + lease_s)
                )
