"""Admitting a fine-tuning job to the queue once its files are validated.

A job may be created on a file still `uploaded` (its validation runs in the background); it then
waits in `validating_files`. Admission runs when the job is created and again on each supervisor
pass: a job whose files are all `processed` (with the rights its tenant's policy requires, and the
consent of the people shown in videos with faces) is queued; a job with a file in `error`, deleted,
or short of rights or consent fails, naming the files; otherwise it keeps waiting.
"""

from __future__ import annotations

import logging
from enum import Enum

from reelforge.errors import NotFoundError, UserInputError
from reelforge.platform.config import TrainingPolicy
from reelforge.platform.stores.files import PROCESSED, UPLOADED, FileStore, UploadedFile
from reelforge.platform.stores.fine_tune_jobs import QUEUED, FineTuneJob, FineTuneStore
from reelforge.safety.face_consent import require_face_consent

logger = logging.getLogger(__name__)


class Admission(Enum):
    """Where admission left a job."""

    QUEUED = "queued"
    FAILED = "failed"
    WAITING = "waiting"


def check_rights(file: UploadedFile, param: str) -> None:
    """Every accepted video of `file` declares a licence and consent, or a 400 naming the first that do not."""
    missing = [
        v["file"] for v in (file.report or {}).get("accepted", []) if not (v.get("license") and v.get("consent"))
    ]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UserInputError(
            f"this tenant's policy requires a declared license and consent for every training video; {file.id} has "
            f"{len(missing)} without: {shown}. Declare them in metadata.jsonl/csv (license, consent columns) or as "
            "upload fields `license` and `consent`",
            param=param,
        )


def job_files(job: FineTuneJob) -> list[tuple[str, str]]:
    """The job's (label, file id) pairs: its training file and its validation file if it has one."""
    labels = (("training_file", job.training_file), ("validation_file", job.validation_file))
    return [(label, file_id) for label, file_id in labels if file_id is not None]


def check_file(file: UploadedFile, param: str, policy: TrainingPolicy) -> None:
    """The tenant's policy on a validated file: declared rights where required, consent where faces show."""
    if policy.require_rights:
        check_rights(file, param)
    if policy.faces_need_consent:
        require_face_consent((file.report or {}).get("accepted", []), f"{file.id} ({file.filename})", param)


def admit_job(jobs: FineTuneStore, files: FileStore, job: FineTuneJob, policy: TrainingPolicy) -> Admission:
    """Queue, fail or keep waiting a `validating_files` job, by the state of its files."""
    checked: list[tuple[str, UploadedFile]] = []
    for label, file_id in job_files(job):
        try:
            file = files.get(job.tenant, file_id)
        except NotFoundError:
            return _fail(jobs, job, label, f"{label} {file_id} was deleted before it was validated", None)
        if file.status == UPLOADED:
            return Admission.WAITING
        if file.status != PROCESSED:
            details = file.status_details or "it was not validated"
            message = f"{label} {file.id} ({file.filename}) holds no usable footage: {details}"
            return _fail(jobs, job, label, message, file.report)
        try:
            check_file(file, label, policy)
        except UserInputError as exc:
            return _fail(jobs, job, label, exc.message, None)
        checked.append((label, file))
    if not jobs.mark_queued(job.id):  # another replica admitted it, or it was cancelled meanwhile
        return Admission.QUEUED if jobs.get(None, job.id).status == QUEUED else Admission.FAILED
    for label, file in checked:
        jobs.add_event(job.id, f"Validated {label} {file.id}: {file.status_details}")
    logger.info("fine-tuning job %s admitted to the queue", job.id)
    return Admission.QUEUED


def _fail(jobs: FineTuneStore, job: FineTuneJob, label: str, message: str, report: dict | None) -> Admission:
    if jobs.fail(job.id, f"invalid_{label}", message, label):
        jobs.add_event(job.id, message, level="error", data={"report": report} if report is not None else None)
    return Admission.FAILED
