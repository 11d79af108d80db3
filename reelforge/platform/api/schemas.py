"""Response models of every route: OpenAI's object shapes, so `/openapi.json` describes what the API returns.

Each model is built from a store's row with its `of` constructor; the routes never hand-build dicts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from reelforge.platform.stores.audit_log import AuditEvent
from reelforge.platform.stores.files import UploadedFile
from reelforge.platform.stores.fine_tune_jobs import (
    FineTuneCheckpoint,
    FineTuneEvent,
    FineTuneJob,
)
from reelforge.platform.stores.usage import UsageSummary
from reelforge.platform.stores.video_jobs import FAILED, IN_PROGRESS, VideoJob
from reelforge.safety.output_review import HELD, REJECTED


class ErrorDetail(BaseModel):
    message: str
    type: str  # invalid_request_error, requests (429) or server_error
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    """Every error response: OpenAI's shape."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "The request is invalid; `param` names the field."),
        (401, "No API key, or an unknown or revoked one."),
        (404, "No such object for this tenant (another tenant's ids look the same)."),
        (429, "A quota is used up; `Retry-After` says when to come back."),
    )
}


class Health(BaseModel):
    status: Literal["ok"] = "ok"


# ---- videos ------------------------------------------------------------------------------------


class VideoError(BaseModel):
    code: str
    message: str | None


class VideoReview(BaseModel):
    """The real-person safeguard's hold on a video that shows a face, and the operator's decision."""

    status: Literal["held", "approved", "rejected"]
    note: str | None = None


REJECTED_IN_REVIEW = "rejected_in_review"


class VideoObject(BaseModel):
    """OpenAI's `video` object."""

    id: str
    object: Literal["video"] = "video"
    status: str  # queued, in_progress, completed, failed
    progress: int
    created_at: int
    completed_at: int | None
    expires_at: int | None
    model: str
    seconds: str
    size: str
    prompt: str
    error: VideoError | None
    remixed_from_video_id: str | None = None
    review: VideoReview | None = None  # set when the video showed a face (see `reelforge review`)

    @classmethod
    def of(cls, job: VideoJob) -> VideoObject:
        # A held video is not done for its tenant: OpenAI clients keep polling an in-progress video
        # and download only a completed one. A rejected one ends as a failure with the reason.
        status, error = (
            job.status,
            (VideoError(code=job.error_code, message=job.error_message) if job.error_code else None),
        )
        if job.review == HELD:
            status = IN_PROGRESS
        elif job.review == REJECTED:
            status, error = FAILED, VideoError(code=REJECTED_IN_REVIEW, message=job.review_note)
        return cls(
            id=job.id,
            status=status,
            progress=job.progress,
            created_at=int(job.created_at),
            completed_at=int(job.completed_at) if job.completed_at else None,
            expires_at=int(job.expires_at) if job.expires_at else None,
            model=job.model,
            seconds=job.seconds,
            size=job.size,
            prompt=job.prompt,
            error=error,
            remixed_from_video_id=job.remixed_from,
            review=VideoReview(status=job.review, note=job.review_note) if job.review else None,
        )


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


# ---- models ------------------------------------------------------------------------------------


class ModelObject(BaseModel):
    """OpenAI's `model` object: a base model, or one of the tenant's fine-tuned `ft:` ids."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str

    @classmethod
    def of(cls, model_id: str, tenant: str) -> ModelObject:
        return cls(id=model_id, owned_by=tenant if model_id.startswith("ft:") else "reelforge")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


# ---- files -------------------------------------------------------------------------------------


class FileObject(BaseModel):
    """OpenAI's `file` object; `status_details` says what validation accepted and rejected."""

    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str  # uploaded, processed, error
    status_details: str | None
    expires_at: int | None = None

    @classmethod
    def of(cls, file: UploadedFile) -> FileObject:
        return cls(
            id=file.id,
            bytes=file.bytes,
            created_at=int(file.created_at),
            filename=file.filename,
            purpose=file.purpose,
            status=file.status,
            status_details=file.status_details,
        )


class FileDeleted(BaseModel):
    """OpenAI's deletion object, plus what reelforge removed with the file and what it kept, and why."""

    id: str
    object: Literal["file"] = "file"
    deleted: bool = True
    derived_data_removed: int = 0  # directories of extracted footage and cached latents
    kept: list[str] = []


# ---- fine-tuning -------------------------------------------------------------------------------


class FineTuningError(BaseModel):
    code: str
    message: str | None
    param: str | None


class FineTuningJobObject(BaseModel):
    """OpenAI's `fine_tuning.job` object."""

    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    error: FineTuningError | None
    fine_tuned_model: str | None
    finished_at: int | None
    hyperparameters: dict
    model: str
    organization_id: str
    result_files: list[str] = Field(default_factory=list)
    seed: int
    status: str
    trained_tokens: int | None = None
    training_file: str
    validation_file: str | None
    estimated_finish: int | None = None
    integrations: list[dict] = Field(default_factory=list)
    metadata: dict | None
    user_provided_suffix: str
    method: dict

    @classmethod
    def of(cls, job: FineTuneJob) -> FineTuningJobObject:
        error = (
            FineTuningError(code=job.error_code, message=job.error_message, param=job.error_param)
            if job.error_code
            else None
        )
        return cls(
            id=job.id,
            created_at=int(job.created_at),
            error=error,
            fine_tuned_model=job.fine_tuned_model,
            finished_at=int(job.finished_at) if job.finished_at else None,
            hyperparameters=job.hyperparameters,
            model=job.model,
            organization_id=job.tenant,
            seed=job.seed,
            status=job.status,
            training_file=job.training_file,
            validation_file=job.validation_file,
            metadata=job.metadata_,
            user_provided_suffix=job.suffix,
            method={"type": "supervised", "supervised": {"hyperparameters": job.hyperparameters}},
        )


class FineTuningEventObject(BaseModel):
    """OpenAI's `fine_tuning.job.event`: a message, or one step's metrics (`type` "metrics")."""

    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: str
    type: str
    message: str
    data: dict

    @classmethod
    def of(cls, event: FineTuneEvent) -> FineTuningEventObject:
        return cls(
            id=f"ftevent-{event.id}",
            created_at=int(event.created_at),
            level=event.level,
            type=event.type,
            message=event.message,
            data=event.data or {},
        )


class FineTuningCheckpointObject(BaseModel):
    """OpenAI's `fine_tuning.job.checkpoint`, with the metrics at its step."""

    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    metrics: dict
    step_number: int

    @classmethod
    def of(cls, checkpoint: FineTuneCheckpoint) -> FineTuningCheckpointObject:
        return cls(
            id=f"ftckpt-{checkpoint.id}",
            created_at=int(checkpoint.created_at),
            fine_tuned_model_checkpoint=checkpoint.model_id,
            fine_tuning_job_id=checkpoint.job_id,
            metrics={"step": float(checkpoint.step), **checkpoint.metrics},
            step_number=checkpoint.step,
        )


# ---- audit and usage ---------------------------------------------------------------------------


class AuditEventObject(BaseModel):
    """One audit record of the tenant."""

    object: Literal["audit.event"] = "audit.event"
    id: int
    tenant: str
    at: float
    actor: str
    action: str
    subject: str
    details: dict

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventObject:
        return cls.model_validate(event.to_dict())


class UsageRow(BaseModel):
    day: str
    kind: str  # generation, training, refusal
    model: str
    device: str
    jobs: int
    seconds: float
    frames: int

    @classmethod
    def of(cls, summary: UsageSummary) -> UsageRow:
        return cls.model_validate(summary.to_dict())


class UsageTotals(BaseModel):
    jobs: int
    seconds: float
    frames: int


class UsageReport(BaseModel):
    """The tenant's metered usage by day, and totals per kind."""

    object: Literal["list"] = "list"
    tenant: str
    data: list[UsageRow]
    totals: dict[str, UsageTotals]

    @classmethod
    def of(cls, tenant: str, rows: list[UsageSummary]) -> UsageReport:
        totals = {
            kind: UsageTotals(
                jobs=sum(r.jobs for r in rows if r.kind == kind),
                seconds=round(sum(r.seconds for r in rows if r.kind == kind), 3),
                frames=sum(r.frames for r in rows if r.kind == kind),
            )
            for kind in sorted({r.kind for r in rows})
        }
        return cls(tenant=tenant, data=[UsageRow.of(r) for r in rows], totals=totals)
