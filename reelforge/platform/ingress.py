"""The HTTP ingress: OpenAI's Videos, Models and Files APIs (plus usage) under /v1, on FastAPI inside
Ray Serve (CPU only).

Requests are authenticated, routed, checked and recorded; generation happens in the generator
deployments, fed by the dispatcher this replica runs. Errors of every kind leave in OpenAI's shape
through the handlers below, the one place they are mapped.
"""


import asyncio
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from ray import serve
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from reelforge.errors import ReelforgeError
from reelforge.platform.api_errors import RateLimitError, openai_error_body
from reelforge.platform.dispatcher import JobDispatcher
from reelforge.platform.file_service import FileService
from reelforge.platform.fine_tune_request import parse_fine_tune_request
from reelforge.platform.fine_tune_service import FineTuneService
from reelforge.platform.fine_tune_supervisor import FineTuneSupervisor
from reelforge.platform.generation_limits import ModelCapabilities
from reelforge.platform.job_store import ACTIVE, VideoJob
from reelforge.platform.serve_config import ServeAppConfig
from reelforge.platform.tenant_store import masked_key
from reelforge.platform.video_request import parse_create_request
from reelforge.platform.video_service import VideoService

logger = logging.getLogger(__name__)
api = FastAPI(title="reelforge", description="OpenAI-compatible Videos API for tenant fine-tuned video models")


def _error_response(error: ReelforgeError) -> JSONResponse:
    headers = error.headers if isinstance(error, RateLimitError) else None
    return JSONResponse(openai_error_body(error), status_code=error.http_status, headers=headers)


@api.exception_handler(ReelforgeError)
async def _reelforge_error(_request: Request, exc: ReelforgeError) -> JSONResponse:
    if exc.http_status >= 500:
        logger.error("internal error: %s", exc.message)
    return _error_response(exc)


@api.exception_handler(RequestValidationError)
async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0]
    field = str(first["loc"][-1]) if first.get("loc") else None
    body = {"error": {"message": f"invalid value for {field!r}: {first['msg']}", "type": "invalid_request_error",
                      "param": field, "code": "invalid_value"}}
    return JSONResponse(body, status_code=400)


@api.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = f"no route {request.method} {request.url.path}" if exc.status_code in (404, 405) else str(exc.detail)
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "unknown_url"}}
    return JSONResponse(body, status_code=exc.status_code)


def video_object(job: VideoJob) -> dict:
    """OpenAI's `video` object for a job."""
    error = {"code": job.error_code, "message": job.error_message} if job.error_code else None
    return {
        "id": job.id, "object": "video", "status": job.status, "progress": job.progress,
        "created_at": int(job.created_at), "completed_at": int(job.completed_at) if job.completed_at else None,
        "expires_at": int(job.expires_at) if job.expires_at else None, "model": job.model, "seconds": job.seconds,
        "size": job.size, "prompt": job.prompt, "error": error, "remixed_from_video_id": None,
    }


@serve.deployment(ray_actor_options={"num_cpus": 0.25})
@serve.ingress(api)
class VideoAPI:
    """Authenticates, validates and records requests and uploads; its dispatcher feeds the generators."""

    def __init__(self, app_config: dict, generators: dict, capacity: dict[str, int], base_deployments: dict[str, str]) -> None:
        self.config = ServeAppConfig.model_validate(app_config)
        self.service = VideoService(self.config)
        self.file_service = FileService(self.config)
        self.generators = generators  # deployment name -> handle
        self.base_deployments = base_deployments  # base model -> its shared deployment (for capabilities)
        self._capabilities: dict[str, ModelCapabilities] = {}
        self.dispatcher = JobDispatcher(
            self.service.jobs, self.service.blobs, generators, capacity, self.config.job_lease_s, self.config.dispatch_interval_s,
            fallback=base_deployments,
        )
        # Started at once, not on the first request: jobs left from before a restart must resume
        # even if no client calls.
        self.fine_tunes = FineTuneService(self.config)
        self.supervisor = FineTuneSupervisor(self.config)
        loop = asyncio.get_running_loop()
        self._loop_task = loop.create_task(self.dispatcher.run())
        self._supervisor_task = loop.create_task(self.supervisor.run())

    async def _authenticate(self, request: Request):
        return await run_in_threadpool(self.service.authenticate, request.headers.get("authorization"))

    @staticmethod
    def _actor(request: Request, tenant) -> str:
        """Who acted, for the audit log: the caller's key, masked."""
        return masked_key(request.headers.get("authorization", "").partition(" ")[2].strip(), tenant.name)

    async def _capabilities_of(self, base_model: str) -> ModelCapabilities:
        caps = self._capabilities.get(base_model)
        if caps is None:
            handle = self.generators[self.base_deployments[base_model]]
            caps = ModelCapabilities.from_dict(await handle.capabilities.remote())
            self._capabilities[base_model] = caps
        return caps

    def _video_response(self, job: VideoJob, status_code: int = 200, headers: dict | None = None) -> JSONResponse:
        headers = dict(headers or {})
        if job.status in ACTIVE:
            headers["openai-poll-after-ms"] = str(self.config.poll_after_ms)
        return JSONResponse(video_object(job), status_code=status_code, headers=headers)

    @api.get("/healthz")
    async def healthz(self) -> dict:
        return {"status": "ok"}

    @api.post("/v1/videos")
    async def create_video(self, request: Request) -> JSONResponse:
        tenant = await self._authenticate(request)
        actor = self._actor(request, tenant)
        window = await run_in_threadpool(self.service.quota_check, tenant)
        body = await parse_create_request(request, self.config.max_request_bytes)
        # Before routing: a refused prompt never reaches the registry, the job store or a generator.
        await run_in_threadpool(self.service.moderate, tenant, body, actor)
        route = await run_in_threadpool(self.service.resolve_model, tenant, body.model)
        caps = await self._capabilities_of(route.base_model)
        job = await run_in_threadpool(self.service.create, tenant, body, route, caps, actor)
        self.dispatcher.wake()
        return self._video_response(job, headers=window.headers())

    @api.get("/v1/videos")
    async def list_videos(self, request: Request, after: str | None = None, limit: int = 20, order: str = "desc") -> dict:
        tenant = await self._authenticate(request)
        jobs, has_more = await run_in_threadpool(self.service.list, tenant, after, limit, order)
        data = [video_object(j) for j in jobs]
        return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None, "has_more": has_more}

    @api.get("/v1/videos/{video_id}")
    async def retrieve_video(self, request: Request, video_id: str) -> JSONResponse:
        tenant = await self._authenticate(request)
        return self._video_response(await run_in_threadpool(self.service.get, tenant, video_id))

    @api.delete("/v1/videos/{video_id}")
    async def delete_video(self, request: Request, video_id: str) -> dict:
        tenant = await self._authenticate(request)
        actor = self._actor(request, tenant)
        job = await run_in_threadpool(self.service.delete, tenant, video_id, actor)
        return {"id": job.id, "object": "video.deleted", "deleted": True}

    @api.get("/v1/videos/{video_id}/content")
    async def video_content(self, request: Request, video_id: str, variant: str = "video") -> Response:
        tenant = await self._authenticate(request)
        data, media_type = await run_in_threadpool(self.service.content, tenant, video_id, variant)
        return Response(data, media_type=media_type)

    @api.get("/v1/models")
    async def list_models(self, request: Request) -> dict:
        tenant = await self._authenticate(request)
        ids = await run_in_threadpool(self.service.models_for, tenant)
        return {"object": "list", "data": [self._model_object(i, tenant.name) for i in ids]}

    @api.get("/v1/models/{model_id}")
    async def retrieve_model(self, request: Request, model_id: str) -> dict:
        tenant = await self._authenticate(request)
        route = await run_in_threadpool(self.service.resolve_model, tenant, model_id)
        return self._model_object(route.model, tenant.name)

    @api.post("/v1/files")
    async def create_file(self, request: Request) -> dict:
        tenant = await self._authenticate(request)
        file_id, declaration = await self.file_service.upload(tenant, request, self._actor(request, tenant))
        # Validated before the response: a file is only usable once its inventory is known.
        return (await run_in_threadpool(self.file_service.validate, tenant, file_id, declaration)).to_openai()

    @api.get("/v1/files")
    async def list_files(self, request: Request, purpose: str | None = None, after: str | None = None,
                         limit: int = 100, order: str = "desc") -> dict:
        tenant = await self._authenticate(request)
        files, has_more = await run_in_threadpool(self.file_service.list, tenant, purpose, after, limit, order)
        data = [f.to_openai() for f in files]
        return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None, "has_more": has_more}

    @api.get("/v1/files/{file_id}")
    async def retrieve_file(self, request: Request, file_id: str) -> dict:
        tenant = await self._authenticate(request)
        return (await run_in_threadpool(self.file_service.get, tenant, file_id)).to_openai()

    @api.delete("/v1/files/{file_id}")
    async def delete_file(self, request: Request, file_id: str) -> dict:
        tenant = await self._authenticate(request)
        deleted = await run_in_threadpool(self.file_service.delete, tenant, file_id)
        return {"id": deleted.id, "object": "file", "deleted": True}

    @api.post("/v1/fine_tuning/jobs")
    async def create_fine_tuning_job(self, request: Request) -> dict:
        tenant = await self._authenticate(request)
        body = await parse_fine_tune_request(request, self.config.max_request_bytes)
        job = await run_in_threadpool(self.fine_tunes.create, tenant, body, self._actor(request, tenant))
        self.supervisor.wake()
        return job.to_openai()

    @api.get("/v1/fine_tuning/jobs")
    async def list_fine_tuning_jobs(self, request: Request, after: str | None = None, limit: int = 20) -> dict:
        tenant = await self._authenticate(request)
        jobs, has_more = await run_in_threadpool(self.fine_tunes.list, tenant, after, limit)
        return {"object": "list", "data": [j.to_openai() for j in jobs], "has_more": has_more}

    @api.get("/v1/fine_tuning/jobs/{job_id}")
    async def retrieve_fine_tuning_job(self, request: Request, job_id: str) -> dict:
        tenant = await self._authenticate(request)
        return (await run_in_threadpool(self.fine_tunes.get, tenant, job_id)).to_openai()

    @api.get("/v1/fine_tuning/jobs/{job_id}/events")
    async def fine_tuning_events(self, request: Request, job_id: str, after: str | None = None, limit: int = 20) -> dict:
        tenant = await self._authenticate(request)
        events, has_more = await run_in_threadpool(self.fine_tunes.events, tenant, job_id, after, limit)
        return {"object": "list", "data": [e.to_openai() for e in events], "has_more": has_more}

    @api.get("/v1/fine_tuning/jobs/{job_id}/checkpoints")
    async def fine_tuning_checkpoints(self, request: Request, job_id: str, after: str | None = None, limit: int = 10) -> dict:
        tenant = await self._authenticate(request)
        found, has_more = await run_in_threadpool(self.fine_tunes.checkpoints, tenant, job_id, after, limit)
        data = [c.to_openai() for c in found]
        return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None, "has_more": has_more}

    @api.post("/v1/fine_tuning/jobs/{job_id}/cancel")
    async def cancel_fine_tuning_job(self, request: Request, job_id: str) -> dict:
        tenant = await self._authenticate(request)
        job = await run_in_threadpool(self.fine_tunes.cancel, tenant, job_id, self._actor(request, tenant))
        self.supervisor.wake()
        return job.to_openai()

    @api.get("/v1/audit")
    async def audit(self, request: Request, after: int | None = None, limit: int = 100) -> dict:
        tenant = await self._authenticate(request)
        events, has_more = await run_in_threadpool(self.service.audit_events, tenant, after, limit)
        data = [e.to_dict() for e in events]
        return {"object": "list", "data": data, "last_id": data[-1]["id"] if data else None, "has_more": has_more}

    @api.get("/v1/usage")
    async def usage(self, request: Request, start_date: str | None = None, end_date: str | None = None) -> dict:
        tenant = await self._authenticate(request)
        rows = await run_in_threadpool(self.service.usage_summary, tenant, start_date, end_date)
        data = [r.to_dict() for r in rows]
        totals = {kind: {"jobs": sum(r.jobs for r in rows if r.kind == kind),
                         "seconds": round(sum(r.seconds for r in rows if r.kind == kind), 3),
                         "frames": sum(r.frames for r in rows if r.kind == kind)}
                  for kind in sorted({r.kind for r in rows})}
        return {"object": "list", "tenant": tenant.name, "data": data, "totals": totals}

    @staticmethod
    def _model_object(model_id: str, tenant: str) -> dict:
        return {"id": model_id, "object": "model", "created": 0, "owned_by": tenant if model_id.startswith("ft:") else "reelforge"}
