"""`/v1/files`: footage archives uploaded for fine-tuning (streamed to storage, validated in the background)."""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from reelforge.platform.api.dependencies import Authenticated, Services
from reelforge.platform.api.idempotency import fingerprint, idempotency_key, run_once
from reelforge.platform.api.pagination import FileLimit, Order, Page, page_of
from reelforge.platform.api.request_bodies import upload_body
from reelforge.platform.api.schemas import ERROR_RESPONSES, FileDeleted, FileObject
from reelforge.platform.fine_tuning.upload_validation import validation_lease_s
from reelforge.platform.stores.files import PURPOSES

router = APIRouter(prefix="/v1/files", tags=["files"], responses=ERROR_RESPONSES)


UPLOAD_FIELDS = {
    "purpose": {"type": "string", "enum": list(PURPOSES)},
    "license": {"type": "string", "maxLength": 200, "description": "Applies to videos the archive leaves undeclared."},
    "consent": {"type": "string", "maxLength": 200, "description": "Applies to videos the archive leaves undeclared."},
}


@router.post(
    "",
    response_model=FileObject,
    responses={413: ERROR_RESPONSES[400] | {"description": "Upload too large."}},
    openapi_extra=upload_body(UPLOAD_FIELDS, required=["purpose"]),
)
async def create_file(request: Request, caller: Authenticated, services: Services) -> FileObject:
    """Upload a .zip/.tar of videos with captions (multipart `file`, `purpose=fine-tune`).

    Answers `uploaded` once the bytes are stored; validation runs in the background, and the file
    becomes `processed` or `error` (with the reasons in `status_details`), as OpenAI's Files API does.
    A fine-tuning job may be created on a file still `uploaded`: it waits in `validating_files`.
    With an `Idempotency-Key` header, a repeat of the same upload (same bytes, name and fields)
    returns the first file, and the repeat's bytes are not kept.
    """
    key = idempotency_key(request)
    stored = await services.files.upload(caller.tenant, request, caller.actor, validation_lease_s(services.config))
    declared = json.dumps({k: v for k, v in (stored.declaration or {}).items() if k != "uploader"}, sort_keys=True)

    async def record() -> FileObject:
        services.validations.start(caller.tenant.name, stored.id)
        return FileObject.of(stored)

    request_fingerprint = fingerprint(stored.sha256, stored.filename, stored.purpose, declared)
    try:
        result = await run_once(services, caller, "files.create", key, request_fingerprint, record)
    except BaseException:  # a key conflict (409): nothing of this request stays
        await asyncio.shield(run_in_threadpool(services.files.delete, caller.tenant, stored.id))
        raise
    if isinstance(result, JSONResponse):  # a replay: the first upload stands, this copy goes
        await run_in_threadpool(services.files.delete, caller.tenant, stored.id)
    return result


@router.get("", response_model=Page[FileObject])
async def list_files(
    caller: Authenticated,
    services: Services,
    purpose: str | None = None,
    after: str | None = None,
    limit: FileLimit = 100,
    order: Order = "desc",
) -> Page[FileObject]:
    found, has_more = await run_in_threadpool(services.files.list, caller.tenant, purpose, after, limit, order)
    return page_of(FileObject, [FileObject.of(f) for f in found], has_more)


@router.get("/{file_id}", response_model=FileObject)
async def retrieve_file(file_id: str, caller: Authenticated, services: Services) -> FileObject:
    return FileObject.of(await run_in_threadpool(services.files.get, caller.tenant, file_id))


@router.delete("/{file_id}", response_model=FileDeleted)
async def delete_file(file_id: str, caller: Authenticated, services: Services) -> FileDeleted:
    """Delete the upload with its extracted footage and cached latents (`kept` says what stays, and why)."""
    deletion = await run_in_threadpool(services.files.delete, caller.tenant, file_id)
    return FileDeleted(id=deletion.file.id, derived_data_removed=deletion.removed_dirs, kept=deletion.kept)
