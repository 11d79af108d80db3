"""Upload validation out of the API process: one Ray task per upload, with its own CPU and memory
reservation (`fine_tuning.validation_num_cpus`, `validation_memory_mb`).

Probing every video of an archive, hashing it and extracting the archive under its budgets is work
the ingress must never do itself: a hostile or merely huge upload would take the CPU from every
tenant's requests, or the memory from the process that serves them. The ingress awaits the task
without blocking its event loop. A task that dies (out of memory, a crashed worker) or outlives
`validation_timeout_s` (never scheduled, say) leaves the file `error` with that reason; the ingress
lives on. Without a Ray cluster (the API under a test
client) the same validation runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging

import ray

from reelforge.platform.config import ServeAppConfig
from reelforge.platform.fine_tuning.file_service import FileService
from reelforge.platform.stores.files import UploadedFile

logger = logging.getLogger(__name__)


@ray.remote(max_retries=0)  # a validation that ran out of memory would do so again
def _validate_in_task(config_json: str, tenant: str, file_id: str, declaration: dict | None) -> str:
    FileService(ServeAppConfig.model_validate_json(config_json)).validate(tenant, file_id, declaration)
    return file_id


async def validate_upload(files: FileService, tenant: str, file_id: str, declaration: dict | None) -> UploadedFile:
    """Validate a stored upload in a Ray task (a thread without Ray) and return the file as recorded."""
    if not ray.is_initialized():
        return await asyncio.to_thread(files.validate, tenant, file_id, declaration)
    section = files.config.fine_tuning
    task = _validate_in_task.options(
        num_cpus=section.validation_num_cpus, memory=section.validation_memory_mb * 2**20
    ).remote(files.config.model_dump_json(), tenant, file_id, declaration)
    try:
        await asyncio.wait_for(asyncio.wrap_future(task.future()), timeout=section.validation_timeout_s)
    except (ray.exceptions.RayError, asyncio.TimeoutError) as exc:
        logger.warning("validating %s of %s failed: %r", file_id, tenant, exc)
        if isinstance(exc, asyncio.TimeoutError):
            ray.cancel(task, force=True)
            cause = f"it took longer than {section.validation_timeout_s:g} s"
        elif isinstance(exc, ray.exceptions.OutOfMemoryError):
            cause = "it ran out of memory"
        else:
            cause = type(exc).__name__
        await asyncio.to_thread(
            files.files.finish_validation,
            file_id,
            False,
            f"validation could not finish ({cause}); upload a smaller archive or contact the operator",
            {"accepted": [], "rejected": []},
        )
    return await asyncio.to_thread(files.get_by_name, tenant, file_id)
