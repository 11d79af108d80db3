"""`/v1/fine_tuning/jobs`: create, list, retrieve and cancel jobs, with their events and checkpoints."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from reelforge.platform.api.dependencies import Authenticated, Services
from reelforge.platform.api.fine_tune_request import FineTuneCreateRequest, parse_fine_tune_request
from reelforge.platform.api.idempotency import fingerprint, idempotency_key, idempotent_id, run_once
from reelforge.platform.api.pagination import Limit, Page, page_of
from reelforge.platform.api.request_bodies import json_body
from reelforge.platform.api.schemas import (
    ERROR_RESPONSES,
    FineTuningCheckpointObject,
    FineTuningEventObject,
    FineTuningJobObject,
)

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine-tuning"], responses=ERROR_RESPONSES)


@router.post("", response_model=FineTuningJobObject, openapi_extra=json_body(FineTuneCreateRequest))
async def create_fine_tuning_job(request: Request, caller: Authenticated, services: Services) -> FineTuningJobObject:
    """Create a job on the tenant's validated files; it runs as a Ray Job when the cluster has room.

    With an `Idempotency-Key` header, a repeat of the same request returns the first job.
    """
    key = idempotency_key(request)
    body = await parse_fine_tune_request(request, services.config.max_request_bytes)

    async def create() -> FineTuningJobObject:
        job_id = idempotent_id("ftjob-", caller, "fine_tuning.jobs.create", key)
        job = await run_in_threadpool(services.fine_tunes.create, caller.tenant, body, caller.actor, job_id)
        services.fine_tunes_changed()
        return FineTuningJobObject.of(job)

    return await run_once(services, caller, "fine_tuning.jobs.create", key, fingerprint(body.model_dump_json()), create)


@router.get("", response_model=Page[FineTuningJobObject])
async def list_fine_tuning_jobs(
    caller: Authenticated, services: Services, after: str | None = None, limit: Limit = 20
) -> Page[FineTuningJobObject]:
    jobs, has_more = await run_in_threadpool(services.fine_tunes.list, caller.tenant, after, limit)
    return page_of(FineTuningJobObject, [FineTuningJobObject.of(j) for j in jobs], has_more)


@router.get("/{job_id}", response_model=FineTuningJobObject)
async def retrieve_fine_tuning_job(job_id: str, caller: Authenticated, services: Services) -> FineTuningJobObject:
    return FineTuningJobObject.of(await run_in_threadpool(services.fine_tunes.get, caller.tenant, job_id))


@router.get("/{job_id}/events", response_model=Page[FineTuningEventObject])
async def fine_tuning_events(
    job_id: str, caller: Authenticated, services: Services, after: str | None = None, limit: Limit = 20
) -> Page[FineTuningEventObject]:
    """The job's events, newest first: progress messages and one metrics event per step."""
    events, has_more = await run_in_threadpool(services.fine_tunes.events, caller.tenant, job_id, after, limit)
    return page_of(FineTuningEventObject, [FineTuningEventObject.of(e) for e in events], has_more)


@router.get("/{job_id}/checkpoints", response_model=Page[FineTuningCheckpointObject])
async def fine_tuning_checkpoints(
    job_id: str, caller: Authenticated, services: Services, after: str | None = None, limit: Limit = 10
) -> Page[FineTuningCheckpointObject]:
    found, has_more = await run_in_threadpool(services.fine_tunes.checkpoints, caller.tenant, job_id, after, limit)
    return page_of(FineTuningCheckpointObject, [FineTuningCheckpointObject.of(c) for c in found], has_more)


@router.post("/{job_id}/cancel", response_model=FineTuningJobObject)
async def cancel_fine_tuning_job(job_id: str, caller: Authenticated, services: Services) -> FineTuningJobObject:
    job = await run_in_threadpool(services.fine_tunes.cancel, caller.tenant, job_id, caller.actor)
    services.fine_tunes_changed()
    return FineTuningJobObject.of(job)
