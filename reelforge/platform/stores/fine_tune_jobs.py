"""Fine-tuning jobs (`/v1/fine_tuning/jobs`), their events and checkpoints, in the platform database.

A job row holds the validated `FineTuneConfig` it will run, so what the tenant asked for is fixed
at creation. It is `validating_files` while its files are checked, then `queued` until its Ray Job
(submitted under the job's own id) has its data; the driver marks it `running` and, at the end,
`succeeded` or `failed`; the ingress settles anything the driver could not (a killed driver, a cancel). Terminal
states never change again: every transition is a guarded UPDATE.
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

VALIDATING, QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "validating_files",
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
ACTIVE = (VALIDATING, QUEUED, RUNNING)
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)


def new_job_id() -> str:
    return f"ftjob-{secrets.token_hex(12)}"


class FineTuneJob(Base):
    """One fine-tuning job: the config it runs, where it runs, and how it ended."""

    __tablename__ = "fine_tuning_jobs"

    tenant: Mapped[str] = mapped_column(String(63), index=True)
    model: Mapped[str] = mapped_column(String(200))  # the base model id the tenant asked for
    training_file: Mapped[str] = mapped_column(String(40))
    suffix: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(Integer)
    hyperparameters: Mapped[dict] = mapped_column(JSON)  # as the tenant sent them (OpenAI's names)
    config: Mapped[dict] = mapped_column(JSON)  # the FineTuneConfig that runs, `data` filled in by the driver
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default_factory=new_job_id)
    model_path: Mapped[str | None] = mapped_column(String(1000), nullable=True, default=None)
    validation_file: Mapped[str | None] = mapped_column(String(40), nullable=True, default=None)
    metadata_: Mapped[dict | None] = mapped_column("metadata", JSON, nullable=True, default=None)
    auto_promote: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), index=True, default=VALIDATING)
    created_at: Mapped[float] = mapped_column(Float, index=True, default_factory=time.time)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    submission_id: Mapped[str | None] = mapped_column(String(80), nullable=True, default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    device: Mapped[str | None] = mapped_column(String(16), nullable=True, default=None)  # what the workers trained on
    workers: Mapped[int] = mapped_column(Integer, default=1)
    total_steps: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    registered: Mapped[str | None] = mapped_column(
        String(300), nullable=True, default=None
    )  # "name/version" once registered
    fine_tuned_model: Mapped[str | None] = mapped_column(String(300), nullable=True, default=None)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    error_message: Mapped[str | None] = mapped_column(String(4000), nullable=True, default=None)
    error_param: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    metered: Mapped[bool] = mapped_column(Boolean, default=False)


class FineTuneEvent(Base):
    """One event of a job (a message or a step's metrics), newest first in listings."""

    __tablename__ = "fine_tuning_events"

    job_id: Mapped[str] = mapped_column(String(40), index=True)
    message: Mapped[str] = mapped_column(String(2000))
    level: Mapped[str] = mapped_column(String(8), default="info")
    type: Mapped[str] = mapped_column(String(8), default="message")  # "message" or "metrics"
    data: Mapped[dict | None] = mapped_column(JSON, nullable=True, default=None)
    created_at: Mapped[float] = mapped_column(Float, default_factory=time.time)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True, init=False)


class FineTuneCheckpoint(Base):
    """A checkpoint the training wrote, with the metrics at its step."""

    __tablename__ = "fine_tuning_checkpoints"

    job_id: Mapped[str] = mapped_column(String(40), index=True)
    step: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[str] = mapped_column(String(300))
    metrics: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float, default_factory=time.time)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True, init=False)


def _cursor(text: str | None, prefix: str) -> int | None:
    """`ftevent-12` -> 12; anything else is not one of ours, so it matches nothing."""
    if text is None:
        return None
    number = text.removeprefix(prefix)
    # ASCII digits of a value a 64-bit id column can hold; anything else is no id of ours.
    if not (number.isascii() and number.isdigit() and len(number) <= 18):
        return -1
    return int(number)


def _active(session: Session, tenant: str) -> int:
    return session.scalar(
        select(func.count())
        .select_from(FineTuneJob)
        .where(FineTuneJob.tenant == tenant, FineTuneJob.status.in_(ACTIVE))
    )


class FineTuneStore:
    """Tenant-scoped fine-tuning jobs with their events and checkpoints."""

    def __init__(self, database_url: str) -> None:
        self._session = session_factory(database_url)

    # -- jobs -----------------------------------------------------------------------------------

    def create(self, max_active: int | None = None, **values) -> FineTuneJob:
        """Record a new job in `validating_files` (`values` are the row's columns); with `max_active`, only
        if the tenant's unfinished jobs, this one included, stay within it (QuotaExceeded otherwise)."""
        job = FineTuneJob(**values)
        with self._session.begin() as session:
            if max_active is None:
                session.add(job)
            else:
                insert_within_quota(
                    session, job, "fine-tunes", job.tenant, max_active, lambda s: _active(s, job.tenant)
                )
        return job

    def get(self, tenant: str | None, job_id: str) -> FineTuneJob:
        """The tenant's job (any tenant's when `tenant` is None); NotFoundError otherwise."""
        with self._session() as session:
            row = session.get(FineTuneJob, job_id)
            if row is None or (tenant is not None and row.tenant != tenant):
                raise NotFoundError(f"no fine-tuning job with id {job_id!r}", param="fine_tuning_job_id")
            return row

    def list(self, tenant: str, after: str | None, limit: int) -> tuple[list[FineTuneJob], bool]:
        """One page of the tenant's jobs, newest first; returns (page, has_more)."""
        conditions = [FineTuneJob.tenant == tenant]
        if after is not None:
            cursor = self.get(tenant, after)
            conditions.append(
                or_(
                    FineTuneJob.created_at < cursor.created_at,
                    and_(FineTuneJob.created_at == cursor.created_at, FineTuneJob.id < cursor.id),
                )
            )
        with self._session() as session:
            rows = session.scalars(
                select(FineTuneJob)
                .where(*conditions)
                .order_by(FineTuneJob.created_at.desc(), FineTuneJob.id.desc())
                .limit(limit + 1)
            ).all()
            jobs = list(rows)
        return jobs[:limit], len(jobs) > limit

    def count_active(self, tenant: str) -> int:
        """The tenant's jobs that are validating, queued or running."""
        with self._session() as session:
            return _active(session, tenant)

    def using_file(self, tenant: str, file_id: str) -> list[FineTuneJob]:
        """The tenant's jobs that train or validate on `file_id`."""
        with self._session() as session:
            return list(
                session.scalars(
                    select(FineTuneJob).where(
                        FineTuneJob.tenant == tenant,
                        or_(FineTuneJob.training_file == file_id, FineTuneJob.validation_file == file_id),
                    )
                ).all()
            )

    def in_flight(self) -> list[FineTuneJob]:
        """Every job that is not finished, oldest first: what the ingress submits and follows."""
        with self._session() as session:
            rows = session.scalars(
                select(FineTuneJob).where(FineTuneJob.status.in_(ACTIVE)).order_by(FineTuneJob.created_at)
            ).all()
            unsettled = session.scalars(
                select(FineTuneJob).where(
                    FineTuneJob.status.in_(TERMINAL),
                    FineTuneJob.submission_id.is_not(None),
                    FineTuneJob.metered.is_(False),
                )
            ).all()
            return [*rows, *unsettled]

    def _transition(self, job_id: str, allowed_from: tuple[str, ...], **values) -> bool:
        with self._session.begin() as session:
            result = session.execute(
                update(FineTuneJob)
                .where(FineTuneJob.id == job_id, FineTuneJob.status.in_(allowed_from))
                .values(**values)
            )
            return result.rowcount == 1

    def set_submission(self, job_id: str, submission_id: str) -> None:
        """The Ray Job that runs the job (recorded whatever the status, so a cancel can stop it)."""
        with self._session.begin() as session:
            session.execute(update(FineTuneJob).where(FineTuneJob.id == job_id).values(submission_id=submission_id))

    def mark_queued(self, job_id: str) -> bool:
        """Files are valid: the job waits for its turn on the cluster."""
        return self._transition(job_id, (VALIDATING,), status=QUEUED)

    def mark_running(self, job_id: str, device: str, workers: int, total_steps: int, run_id: str | None = None) -> bool:
        """The driver has its data and starts training."""
        return self._transition(
            job_id,
            (VALIDATING, QUEUED),
            status=RUNNING,
            started_at=time.time(),
            device=device,
            workers=workers,
            total_steps=total_steps,
            run_id=run_id,
        )

    def set_run(self, job_id: str, run_id: str) -> None:
        """The MLflow run the job writes."""
        self._transition(job_id, ACTIVE, run_id=run_id)

    def set_registered(self, job_id: str, registered: str) -> None:
        """The registry version the job created (kept even if the job then ends otherwise, for clean-up)."""
        with self._session.begin() as session:
            session.execute(update(FineTuneJob).where(FineTuneJob.id == job_id).values(registered=registered))

    def cancel_requested(self, job_id: str) -> bool:
        """Whether the job was cancelled (the driver asks before it registers anything)."""
        with self._session() as session:
            return bool(session.scalar(select(FineTuneJob.cancel_requested).where(FineTuneJob.id == job_id)))

    def succeed(self, job_id: str, fine_tuned_model: str) -> bool:
        return self._transition(
            job_id, ACTIVE, status=SUCCEEDED, fine_tuned_model=fine_tuned_model, finished_at=time.time()
        )

    def fail(self, job_id: str, code: str, message: str, param: str | None = None) -> bool:
        return self._transition(
            job_id,
            ACTIVE,
            status=FAILED,
            error_code=code,
            error_message=message[:4000],
            error_param=param,
            finished_at=time.time(),
        )

    def cancel(self, tenant: str, job_id: str) -> FineTuneJob:
        """Mark the tenant's job cancelled (the ingress then stops its Ray Job); finished jobs stay as they are."""
        self.get(tenant, job_id)
        self._transition(job_id, ACTIVE, status=CANCELLED, cancel_requested=True, finished_at=time.time())
        return self.get(tenant, job_id)

    def mark_metered(self, job_id: str) -> None:
        """The finished job's usage is recorded and its Ray Job settled: nothing more to follow."""
        with self._session.begin() as session:
            session.execute(update(FineTuneJob).where(FineTuneJob.id == job_id).values(metered=True))

    # -- events and checkpoints -----------------------------------------------------------------

    def add_event(
        self, job_id: str, message: str, level: str = "info", data: dict | None = None, type_: str = "message"
    ) -> None:
        with self._session.begin() as session:
            session.add(FineTuneEvent(job_id=job_id, level=level, type=type_, message=message[:2000], data=data))

    def events(self, tenant: str, job_id: str, after: str | None, limit: int) -> tuple[list[FineTuneEvent], bool]:
        """The job's events newest first; `after` is the last event id of the previous page."""
        self.get(tenant, job_id)
        conditions = [FineTuneEvent.job_id == job_id]
        cursor = _cursor(after, "ftevent-")
        if cursor is not None:
            conditions.append(FineTuneEvent.id < cursor)
        with self._session() as session:
            rows = session.scalars(
                select(FineTuneEvent).where(*conditions).order_by(FineTuneEvent.id.desc()).limit(limit + 1)
            ).all()
            events = list(rows)
        return events[:limit], len(events) > limit

    def add_checkpoint(self, job_id: str, step: int, model_id: str, metrics: dict) -> None:
        with self._session.begin() as session:
            session.add(FineTuneCheckpoint(job_id=job_id, step=step, model_id=model_id, metrics=metrics))

    def name_checkpoint(self, job_id: str, step: int, model_id: str) -> None:
        """Give the checkpoint at `step` the model id it is served under."""
        with self._session.begin() as session:
            session.execute(
                update(FineTuneCheckpoint)
                .where(FineTuneCheckpoint.job_id == job_id, FineTuneCheckpoint.step == step)
                .values(model_id=model_id)
            )

    def checkpoints(
        self, tenant: str, job_id: str, after: str | None, limit: int
    ) -> tuple[list[FineTuneCheckpoint], bool]:
        """The job's checkpoints, latest step first."""
        self.get(tenant, job_id)
        conditions = [FineTuneCheckpoint.job_id == job_id]
        cursor = _cursor(after, "ftckpt-")
        if cursor is not None:
            conditions.append(FineTuneCheckpoint.id < cursor)
        with self._session() as session:
            rows = session.scalars(
                select(FineTuneCheckpoint).where(*conditions).order_by(FineTuneCheckpoint.id.desc()).limit(limit + 1)
            ).all()
            found = list(rows)
        return found[:limit], len(found) > limit
