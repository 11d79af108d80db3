"""The Fine-tuning API's logic without HTTP: create (with the tenant's limits), read, list, cancel.

A job is created against the tenant's own files and a base model the server runs; its config is
validated and fixed here. Running it is the `FineTuneSupervisor`'s business (a Ray Job per job).
"""

from __future__ import annotations

from reelforge.errors import NotFoundError, RateLimitError, UnknownModelError, UserInputError
from reelforge.platform.api.fine_tune_request import (
    HYPERPARAMETERS_PARAM,
    FineTuneCreateRequest,
    build_job_config,
)
from reelforge.platform.config import GeneratorConfig, ServeAppConfig
from reelforge.platform.fine_tuning.job_admission import Admission, admit_job, check_file
from reelforge.platform.stores.audit_log import (
    FINETUNE_CANCELLED,
    FINETUNE_CREATED,
    AuditLog,
)
from reelforge.platform.stores.files import PROCESSED, FileStore, UploadedFile
from reelforge.platform.stores.fine_tune_jobs import (
    FineTuneCheckpoint,
    FineTuneEvent,
    FineTuneJob,
    FineTuneStore,
    new_job_id,
)
from reelforge.platform.stores.quota_guard import QuotaExceeded
from reelforge.platform.stores.tenants import Tenant

RETRY_AFTER_S = 60  # when a concurrency slot frees is unknown; a minute is a fair hint for a training job


class FineTuneService:
    """Tenant-scoped fine-tuning jobs."""

    def __init__(self, config: ServeAppConfig) -> None:
        self.config = config
        url = config.settings().resolved_database_url
        self.jobs = FineTuneStore(url)
        self.files = FileStore(url)
        self.audit = AuditLog(url)

    def _base_generator(self, model: str) -> GeneratorConfig:
        if model.startswith("ft:"):
            raise UserInputError(f"{model!r} is a fine-tuned model; fine-tune its base model instead", param="model")
        generator = self.config.generator_for(model)
        if generator is None:
            served = ", ".join(g.base_model for g in self.config.generators)
            raise UnknownModelError(f"model {model!r} is not served here; fine-tunable models: {served}", param="model")
        return generator

    def _file(self, tenant: Tenant, file_id: str, param: str) -> UploadedFile:
        try:
            found = self.files.get(tenant.name, file_id)
        except UserInputError as exc:
            exc.param = param
            raise
        if found.purpose != "fine-tune":
            raise UserInputError(
                f"file {file_id} has purpose {found.purpose!r}; upload it with purpose 'fine-tune'", param=param
            )
        return found

    def create(self, tenant: Tenant, body: FineTuneCreateRequest, actor: str, job_id: str | None = None) -> FineTuneJob:
        """Validate and record a job; a file that failed validation fails the job with its report, and a
        job on a file still being validated waits for it in `validating_files`.

        `job_id` (derived from an Idempotency-Key) makes a rerun of the same create return the job
        the first run recorded, if it got that far before its server died.
        """
        if job_id is not None:
            try:
                return self.jobs.get(tenant.name, job_id)
            except NotFoundError:
                pass
        policy = self.config.fine_tuning.policy_for(tenant.name)
        generator = self._base_generator(body.model)
        training = self._file(tenant, body.training_file, "training_file")
        validation = self._file(tenant, body.validation_file, "validation_file") if body.validation_file else None
        # Known now for a validated file; a pending one is checked at admission.
        for label, file in (("training_file", training), ("validation_file", validation)):
            if file is not None and file.status == PROCESSED:
                check_file(file, label, policy)
        config, reported = build_job_config(body, tenant.name, generator.model, self.config.fine_tuning.job_defaults)
        if config.epochs is None and config.steps > policy.max_steps:
            asked = body.chosen_hyperparameters().steps is not None
            raise UserInputError(
                f"steps {config.steps}{'' if asked else ' (the default)'} is more than the {policy.max_steps} "
                f"allowed per job; ask for fewer in {HYPERPARAMETERS_PARAM}.steps",
                param=f"{HYPERPARAMETERS_PARAM}.steps",
            )
        try:  # counted and inserted in one transaction: parallel requests cannot overshoot the quota
            job = self.jobs.create(
                max_active=policy.concurrent_jobs,
                id=job_id or new_job_id(),
                tenant=tenant.name,
                model=body.model,
                model_path=generator.model_path,
                training_file=training.id,
                validation_file=validation.id if validation else None,
                suffix=config.suffix,
                seed=config.seed,
                hyperparameters=reported,
                config=config.model_dump(mode="json"),
                metadata_=body.metadata,
                auto_promote=policy.auto_promote,
                workers=config.workers,
            )
        except QuotaExceeded as exc:
            raise RateLimitError(
                f"tenant {tenant.name!r} has {exc.active} fine-tuning job(s) in progress and may run {exc.limit} "
                "at once; wait for one to finish or cancel one",
                RETRY_AFTER_S,
            ) from None
        self.audit.record(
            tenant.name,
            actor,
            FINETUNE_CREATED,
            job.id,
            model=body.model,
            training_file=training.id,
            fine_tuned_model=config.fine_tuned_model_id,
        )
        self.jobs.add_event(job.id, f"Created fine-tuning job {job.id} of {body.model} ({config.fine_tuned_model_id})")
        if admit_job(self.jobs, self.files, job, policy) == Admission.WAITING:
            pending = [f.id for f in (training, validation) if f is not None and f.status != PROCESSED]
            self.jobs.add_event(job.id, f"Waiting for the validation of {', '.join(pending)}")
        return self.jobs.get(tenant.name, job.id)

    def get(self, tenant: Tenant, job_id: str) -> FineTuneJob:
        return self.jobs.get(tenant.name, job_id)

    def list(self, tenant: Tenant, after: str | None, limit: int) -> tuple[list[FineTuneJob], bool]:
        return self.jobs.list(tenant.name, after, limit)

    def events(self, tenant: Tenant, job_id: str, after: str | None, limit: int) -> tuple[list[FineTuneEvent], bool]:
        return self.jobs.events(tenant.name, job_id, after, limit)

    def checkpoints(
        self, tenant: Tenant, job_id: str, after: str | None, limit: int
    ) -> tuple[list[FineTuneCheckpoint], bool]:
        return self.jobs.checkpoints(tenant.name, job_id, after, limit)

    def cancel(self, tenant: Tenant, job_id: str, actor: str) -> FineTuneJob:
        """Cancel an unfinished job (its Ray Job is stopped by the supervisor); a finished one is a 400."""
        job = self.jobs.get(tenant.name, job_id)
        if job.status in ("succeeded", "failed", "cancelled"):
            raise UserInputError(
                f"fine-tuning job {job_id} has already {job.status}; only unfinished jobs can be cancelled",
                param="fine_tuning_job_id",
            )
        job = self.jobs.cancel(tenant.name, job_id)
        if job.status == "cancelled":
            self.jobs.add_event(job_id, "Job cancelled; stopping its Ray Job")
            self.audit.record(tenant.name, actor, FINETUNE_CANCELLED, job_id)
        return job
