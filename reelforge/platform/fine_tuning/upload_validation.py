"""Upload validation in the background and out of the API process: one Ray task per upload, with its
own CPU and memory reservation (`fine_tuning.validation_num_cpus`, `validation_memory_mb`).

Probing every video of an archive, hashing it and extracting the archive under its budgets is work
the ingress must never do itself: a hostile or merely huge upload would take the CPU from every
tenant's requests, or the memory from the process that serves them. `POST /v1/files` answers
`uploaded` as soon as the bytes are stored; the `UploadValidator` then runs the task and waits for
it from a small pool of threads, never on the event loop. A task that dies (out of memory, a crashed
worker) or outlives `validation_timeout_s` (never scheduled, say) leaves the file `error` with that
reason; the ingress lives on. Without a Ray cluster (the API under a test client) the same
validation runs in the pool's thread.

Each validation holds a lease on its file row. A validator that died with its ingress replica
leaves the lease to run out, and the sweep of any replica takes the file over, at most
`validation_max_attempts` times in all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import ray

from reelforge.platform.config import ServeAppConfig
from reelforge.platform.fine_tuning.file_service import FileService
from reelforge.platform.stores.blob_store import object_store_env

logger = logging.getLogger(__name__)
LEASE_MARGIN_S = 60.0  # beyond the validation timeout: the validator settles the file before its lease ends
WATCHERS = 32  # threads blocked on validation tasks (cheap): enough that none waits for a thread while its lease runs


@ray.remote(max_retries=0)  # a validation that ran out of memory would do so again
def _validate_in_task(config_json: str, tenant: str, file_id: str) -> str:
    FileService(ServeAppConfig.model_validate_json(config_json)).validate(tenant, file_id)
    return file_id


def validation_lease_s(config: ServeAppConfig) -> float:
    """How long one validation attempt holds its file: its timeout and a margin to record the outcome."""
    return config.fine_tuning.validation_timeout_s + LEASE_MARGIN_S


class UploadValidator:
    """Validates stored uploads in the background and takes over those whose validator died."""

    def __init__(self, files: FileService, finished: Callable[[], None] = lambda: None) -> None:
        self.files = files
        self.config = files.config
        self.finished = finished  # called from a worker thread once a file is processed or error
        self._pool = ThreadPoolExecutor(max_workers=WATCHERS, thread_name_prefix="upload-validation")

    def start(self, tenant: str, file_id: str) -> Future:
        """Validate a stored upload whose lease the caller holds; returns at once."""
        return self._pool.submit(self._validate, tenant, file_id)

    def _validate(self, tenant: str, file_id: str) -> None:
        try:
            if ray.is_initialized():
                self._validate_in_ray(tenant, file_id)
            else:
                self.files.validate(tenant, file_id)
        except Exception as exc:  # the file must not stay `uploaded` because of our own error
            logger.exception("validating %s of %s failed", file_id, tenant)
            self._fail(file_id, f"the validator failed ({type(exc).__name__})")
        finally:
            self.finished()

    def _validate_in_ray(self, tenant: str, file_id: str) -> None:
        section = self.config.fine_tuning
        task = _validate_in_task.options(
            num_cpus=section.validation_num_cpus,
            memory=section.validation_memory_mb * 2**20,
            runtime_env={"env_vars": object_store_env()},  # the task reads the upload where this process stored it
        ).remote(self.config.model_dump_json(), tenant, file_id)
        try:
            ray.get(task, timeout=section.validation_timeout_s)
        except (ray.exceptions.RayError, TimeoutError) as exc:
            logger.warning("validating %s of %s failed: %r", file_id, tenant, exc)
            if isinstance(exc, ray.exceptions.GetTimeoutError):
                ray.cancel(task, force=True)
                cause = f"it took longer than {section.validation_timeout_s:g} s"
            elif isinstance(exc, ray.exceptions.OutOfMemoryError):
                cause = "it ran out of memory"
            else:
                cause = type(exc).__name__
            self._fail(file_id, cause)

    def _fail(self, file_id: str, cause: str) -> None:
        self.files.files.finish_validation(
            file_id,
            False,
            f"validation could not finish ({cause}); upload a smaller archive or contact the operator",
            {"accepted": [], "rejected": []},
        )

    def sweep_once(self) -> int:
        """Start a validation for every file whose validator died; returns how many were taken over."""
        claimed = self.files.files.claim_abandoned_validations(
            validation_lease_s(self.config), self.config.fine_tuning.validation_max_attempts
        )
        for file in claimed:
            logger.warning(
                "taking over the validation of %s of %s (attempt %d)",
                file.id,
                file.tenant,
                file.validation_attempts + 1,
            )
            self.start(file.tenant, file.id)
        return len(claimed)

    async def run(self) -> None:
        """Sweep for abandoned validations forever (each ingress replica runs one)."""
        while True:
            try:
                await asyncio.to_thread(self.sweep_once)
            except Exception:  # the database may be briefly unreachable
                logger.exception("sweeping abandoned upload validations failed")
            await asyncio.sleep(self.config.fine_tuning.poll_interval_s)
