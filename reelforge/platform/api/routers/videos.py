"""`/v1/videos`: create (recorded and queued, never generated in the request), list, retrieve, delete, content."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from reelforge.platform.api.dependencies import Authenticated, Services
from reelforge.platform.api.errors import validate_request
from reelforge.platform.api.idempotency import fingerprint, idempotency_key, idempotent_id, run_once
from reelforge.platform.api.pagination import Limit, Order, Page, page_of
from reelforge.platform.api.request_bodies import json_body
from reelforge.platform.api.schemas import ERROR_RESPONSES, VideoDeleted, VideoObject
from reelforge.platform.api.video_request import (
    VideoCreateRequest,
    VideoRemixRequest,
    parse_create_request,
    read_json_object,
)
from reelforge.platform.stores.blob_store import VARIANTS
from reelforge.platform.stores.video_jobs import ACTIVE, VideoJob
from reelforge.safety.output_review import HELD

router = APIRouter(prefix="/v1/videos", tags=["videos"], responses=ERROR_RESPONSES)

# What /content returns, as the blob store's variants say: the MP4, or its JPEG thumbnail.
CONTENT_TYPES = {media_type: {"schema": {"type": "string", "format": "binary"}} for _, media_type in VARIANTS.values()}


def _video(job: VideoJob, response: Response, services: Services) -> VideoObject:
    if job.status in ACTIVE or job.review == HELD:  # tells the client how soon polling is worth it
        response.headers["openai-poll-after-ms"] = str(services.config.poll_after_ms)
    return VideoObject.of(job)


@router.post(
    "",
    response_model=VideoObject,
    openapi_extra=json_body(VideoCreateRequest, also_form=True, form_files=("input_reference",)),
)
async def create_video(request: Request, response: Response, caller: Authenticated, services: Services) -> VideoObject:
    """Accept a generation request (JSON or multipart form) and queue it for the model's generators.

    Image-to-video models take a first frame as the multipart file `input_reference` (PNG, JPEG or
    WebP), scaled to cover the video's size and centre-cropped. With an `Idempotency-Key` header, a
    repeat of the same request returns the first video.
    """
    videos = services.videos
    key = idempotency_key(request)
    window = await run_in_threadpool(videos.quota_check, caller.tenant)
    config = services.config
    parsed = await parse_create_request(request, config.max_request_bytes, config.max_reference_bytes)
    body = parsed.request

    async def create() -> VideoObject:
        # Before routing: a refused prompt never reaches the registry, the job store or a generator.
        await run_in_threadpool(videos.moderate, caller.tenant, body, caller.actor)
        route = await run_in_threadpool(videos.resolve_model, caller.tenant, body.model)
        caps = await services.capabilities(route.base_model)
        video_id = idempotent_id("video_", caller, "videos.create", key)
        job = await run_in_threadpool(
            videos.create, caller.tenant, body, route, caps, caller.actor, video_id, parsed.reference
        )
        services.video_created()
        return _video(job, response, services)

    response.headers.update(window.headers())
    reference_digest = hashlib.sha256(parsed.reference).hexdigest() if parsed.reference is not None else ""
    request_print = fingerprint(body.model_dump_json() + reference_digest)
    return await run_once(services, caller, "videos.create", key, request_print, create)


@router.post("/{video_id}/remix", response_model=VideoObject, openapi_extra=json_body(VideoRemixRequest))
async def remix_video(
    video_id: str, request: Request, response: Response, caller: Authenticated, services: Services
) -> VideoObject:
    """A new video from a new prompt with the source's model, size, length, seed and first frame."""
    videos = services.videos
    key = idempotency_key(request)
    window = await run_in_threadpool(videos.quota_check, caller.tenant)
    body = validate_request(VideoRemixRequest, await read_json_object(request, services.config.max_request_bytes))

    async def remix() -> VideoObject:
        new_id = idempotent_id("video_", caller, "videos.remix", key)
        job = await run_in_threadpool(videos.remix, caller.tenant, video_id, body.prompt, caller.actor, new_id)
        services.video_created()
        return _video(job, response, services)

    response.headers.update(window.headers())
    return await run_once(services, caller, "videos.remix", key, fingerprint(video_id + body.model_dump_json()), remix)


@router.get("", response_model=Page[VideoObject])
async def list_videos(
    caller: Authenticated, services: Services, after: str | None = None, limit: Limit = 20, order: Order = "desc"
) -> Page[VideoObject]:
    jobs, has_more = await run_in_threadpool(services.videos.list, caller.tenant, after, limit, order)
    return page_of(VideoObject, [VideoObject.of(j) for j in jobs], has_more)


@router.get("/{video_id}", response_model=VideoObject)
async def retrieve_video(video_id: str, response: Response, caller: Authenticated, services: Services) -> VideoObject:
    return _video(await run_in_threadpool(services.videos.get, caller.tenant, video_id), response, services)


@router.delete("/{video_id}", response_model=VideoDeleted)
async def delete_video(video_id: str, caller: Authenticated, services: Services) -> VideoDeleted:
    """Delete a video: a queued one is cancelled, a finished one's files are removed."""
    job = await run_in_threadpool(services.videos.delete, caller.tenant, video_id, caller.actor)
    return VideoDeleted(id=job.id)


@router.get(
    "/{video_id}/content",
    response_class=Response,
    responses={200: {"content": CONTENT_TYPES, "description": "The MP4 (variant=video) or its thumbnail."}},
)
async def video_content(video_id: str, caller: Authenticated, services: Services, variant: str = "video") -> Response:
    data, media_type = await run_in_threadpool(services.videos.content, caller.tenant, video_id, variant)
    return Response(data, media_type=media_type)
