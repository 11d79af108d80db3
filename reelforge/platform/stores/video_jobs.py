"""Video jobs: every accepted request is a row before anything runs, so no accepted job is lost.

Life of a row: `queued` (accepted) -> claimed by a dispatcher (lease owner set, still `queued`) ->
`in_progress` (a generator replica started it; each progress write renews the lease) ->
`completed` or `failed`. A lease that runs out (the server stopped, a replica died) puts the job
back to `queued` for another attempt, so jobs in flight when the server stops finish after it
starts again. Every read takes the tenant: another tenant's id is simply not found.
"""

from __future__ import annotations

import secrets
import time

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
    timings: Mapped[dict | None] = mapped_column(JSON, nullable=True, default=None)

    @property
    def width(self) -> int:
        return int(self.size.split("x")[0])

    @property
    def height(self) -> int:
        return int(self.size.split("x")[1])


def _active(session: Session, tenant: str) -> int:
    return session.scalar(
        select(func.count())
        .select_from(VideoJob)
        .where(VideoJob.tenant == tenant, VideoJob.status.in_(ACTIVE), VideoJob.deleted.is_(False))
    )


class VideoJobStore:
    """Tenant-scoped reads and the dispatch/lease writes of the `videos` table."""

    def __init__(self, database_url: str, max_attempts: int = 3) -> None:
        self._session = session_factory(database_url)
        self.max_attempts = max_attempts

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
    def claim(self, owner: str, deployment: str, limit: int, lease_s: float) -> list[VideoJob]:
        """Atomically take up to `limit` unclaimed queued jobs of `deployment`, oldest first."""
        if limit <= 0:
            return []
        now = time.time()
        claimed = []
        with self._session() as session:
            candidates = session.scalars(
                select(VideoJob.id)
                .where(
                    VideoJob.deployment == deployment,
                    VideoJob.status == QUEUED,
                    VideoJob.lease_owner.is_(None),
                    VideoJob.deleted.is_(False),
                )
                .order_by(VideoJob.created_at)
                .limit(limit)
            ).all()
        for video_id in candidates:
            with self._session.begin() as session:
                # The WHERE makes the claim atomic: of two dispatchers racing, one updates one row.
                taken = session.execute(
                    update(VideoJob)
                    .where(VideoJob.id == video_id, VideoJob.status == QUEUED, VideoJob.lease_owner.is_(None))
                    .values(lease_owner=owner, lease_until=now + lease_s)
                ).rowcount
            if taken:
                claimed.append(self.peek(video_id))
        return claimed

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

    def start(self, video_id: str, replica: str, lease_s: float) -> VideoJob | None:
        """Mark a claimed job in progress on `replica`; None if it is already finished."""
        now = time.time()
        with self._session.begin() as session:
            updated = session.execute(
                update(VideoJob)
                .where(VideoJob.id == video_id, VideoJob.status.in_(ACTIVE))
                .values(
                    status=IN_PROGRESS,
                    started_at=now,
                    replica=replica,
                    progress=0,
                    lease_until=now + lease_s,
                    attempts=VideoJob.attempts + 1,
                )
            ).rowcount
        return self.peek(video_id) if updated else None

    def report_progress(self, video_id: str, progress: int, lease_s: float) -> None:
        """Store progress (0-99) and renew the lease: the job is alive."""
        with self._session.begin() as session:
            session.execute(
                update(VideoJob)
                .where(VideoJob.id == video_id, VideoJob.status == IN_PROGRESS)
                .values(progress=min(99, max(0, int(progress))), lease_until=time.time() + lease_s)
            )

    def complete(self, video_id: str, expires_at: float, timings: dict) -> VideoJob:
        """Mark the job completed; its files are in the blob store."""
        now = time.time()
        with self._session.begin() as session:
            session.execute(
                update(VideoJob)
                .where(VideoJob.id == video_id)
                .values(
                    status=COMPLETED,
                    progress=100,
                    completed_at=now,
                    expires_at=expires_at,
                    timings=timings,
                    lease_owner=None,
                    lease_until=None,
                    error_code=None,
                    error_message=None,
                )
            )
        return self.peek(video_id)

    def fail(self, video_id: str, code: str, message: str) -> None:
        """Mark the job failed with an error the client will see."""
        with self._session.begin() as session:
            session.execute(
                update(VideoJob)
                .where(VideoJob.id == video_id, VideoJob.status.in_(ACTIVE))
                .values(
                    status=FAILED,
                    completed_at=time.time(),
                    error_code=code,
                    error_message=message[:2000],
                    lease_owner=None,
                    lease_until=None,
                )
            )

    def release(self, video_id: str, owner: str, reason: str) -> None:
        """Give a job back after its dispatch broke (replica died): retry, or fail after `max_attempts`."""
        job = self.peek(video_id)
        if job is None or job.status not in ACTIVE or job.lease_owner != owner:
            return
        self._requeue_or_fail(video_id, job.attempts, reason)

    def _requeue_or_fail(self, video_id: str, attempts: int, reason: str) -> None:
        if attempts >= self.max_attempts:
            self.fail(
                video_id, "generation_interrupted", f"generation was interrupted {attempts} times; last: {reason}"
            )
            return
        with self._session.begin() as session:
            session.execute(
                update(VideoJob)
                .where(VideoJob.id == video_id, VideoJob.status.in_(ACTIVE))
                .values(status=QUEUED, progress=0, lease_owner=None, lease_until=None, replica=None)
            )

    def recover_expired_leases(self) -> list[str]:
        """Requeue claimed or running jobs whose lease ran out (their server or replica is gone)."""
        now = time.time()
        with self._session() as session:
            stale = session.execute(
                select(VideoJob.id, VideoJob.attempts).where(
                    VideoJob.status.in_(ACTIVE), VideoJob.lease_until.is_not(None), VideoJob.lease_until < now
                )
            ).all()
        for video_id, attempts in stale:
            self._requeue_or_fail(video_id, attempts, "its lease expired (server stopped or replica lost)")
        return [video_id for video_id, _ in stale]

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

    def renew_leases(self, video_ids: list[str], owner: str, lease_s: float) -> None:
        """Extend the leases of jobs `owner` is still waiting on."""
        with self._session.begin() as session:
            session.execute(
                update(VideoJob)
                .where(VideoJob.id.in_(video_ids), VideoJob.lease_owner == owner, VideoJob.status.in_(ACTIVE))
                .values(lease_until=time.time() + lease_s)
            )
