"""The Videos API's logic without HTTP: authenticate, route a model id, check quotas, record, read.

The ingress deployment turns requests into calls here and results into OpenAI-shaped responses.
Every read takes the authenticated tenant; the adapter a job uses is chosen here from the tenant
and the requested model, never from anything else the client sends.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass

from reelforge.errors import (
    AdapterError,
    NotFoundError,
    UnknownModelError,
    UserInputError,
    VideoExpiredError,
    VideoNotReadyError,
)
from reelforge.jobs.adapter_registry import (
    PRODUCTION,
    alias_version,
    list_versions,
    registered_model_name,
    tenant_adapter_names,
)
from reelforge.platform.api.video_request import VideoCreateRequest
from reelforge.platform.config import ServeAppConfig, deployment_name
from reelforge.platform.serving.first_frames import digest, fitted_reference
from reelforge.platform.serving.generation_limits import (
    ModelCapabilities,
    check_prompt,
    check_sampling,
    check_seconds,
    check_size,
)
from reelforge.platform.serving.moderation import PromptModerator, refuse
from reelforge.platform.stores.adapter_digests import AdapterDigestStore
from reelforge.platform.stores.audit_log import (
    VIDEO_DELETED,
    VIDEO_REFUSED,
    VIDEO_REQUESTED,
    AuditLog,
)
from reelforge.platform.stores.blob_store import VARIANTS, BlobStore
from reelforge.platform.stores.quota_guard import QuotaExceeded
from reelforge.platform.stores.rate_windows import (
    RequestRateLimiter,
    WindowState,
    check_concurrency,
)
from reelforge.platform.stores.tenants import Tenant, TenantStore, hash_key
from reelforge.platform.stores.usage import REFUSAL, UsageMeter, UsageSummary, parse_day, usage_record
from reelforge.platform.stores.video_jobs import (
    ACTIVE,
    COMPLETED,
    VideoJob,
    VideoJobStore,
)
from reelforge.safety.output_review import HELD, REJECTED

# The suffix of an ft: id (as FineTuneConfig.suffix) and an optional @version or @alias.
FINE_TUNED_REFERENCE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}(@([0-9]{1,9}|[a-z][a-z0-9_-]{0,39}))?")


@dataclass(frozen=True)
class ModelRoute:
    """Where a request for `model` goes: base model, adapter version (registry key) and deployment."""

    model: str
    base_model: str
    adapter: str | None
    deployment: str


class VideoService:
    """Tenant-scoped operations of the Videos, Models, usage and audit APIs."""

    def __init__(self, config: ServeAppConfig) -> None:
        self.config = config
        self.settings = config.settings()
        url = self.settings.resolved_database_url
        self.tenants = TenantStore(url)
        self.jobs = VideoJobStore(url, config.retry_policy())
        self.rates = RequestRateLimiter(url)
        self.blobs = BlobStore(self.settings.resolved_storage_url)
        self.meter = UsageMeter(url)
        self.audit = AuditLog(url)
        self.adapter_digests = AdapterDigestStore(url)
        self._moderators: dict[str, PromptModerator] = {}
        self._alias_cache: dict[tuple[str, str], tuple[float, int | None]] = {}
        self._auth_cache: dict[str, tuple[float, Tenant]] = {}
        self._cache_lock = threading.Lock()

    def authenticate(self, authorization: str | None) -> Tenant:
        """The tenant of a `Bearer` key; a valid key is trusted for `auth_cache_s` (polling is cheap)."""
        now = time.monotonic()
        cache_key = hash_key(authorization or "")  # never keep keys in clear, even in memory
        with self._cache_lock:
            hit = self._auth_cache.get(cache_key)
            if hit is not None and now - hit[0] < self.config.auth_cache_s:
                return hit[1]
        tenant = self.tenants.authenticate(authorization)
        with self._cache_lock:
            if len(self._auth_cache) > 10_000:  # many distinct keys: start over rather than grow
                self._auth_cache.clear()
            self._auth_cache[cache_key] = (now, tenant)
        return tenant

    # ---- routing ---------------------------------------------------------------------------
    @property
    def base_models(self) -> list[str]:
        return [g.base_model for g in self.config.generators]

    def _deployment(self, tenant: str, base_model: str) -> str:
        dedicated = self.config.dedicated_for(tenant)
        if dedicated is not None and (dedicated.model or self.base_models[0]) == base_model:
            return deployment_name(base_model, tenant)
        return deployment_name(base_model)

    def _registry_version(self, name: str, selector: str) -> int | None:
        """Version number for an alias or a number, cached for `adapter_resolve_ttl_s`."""
        now = time.monotonic()
        with self._cache_lock:
            hit = self._alias_cache.get((name, selector))
            if hit is not None and now - hit[0] < self.config.adapter_resolve_ttl_s:
                return hit[1]
        if selector.isdigit():
            versions = {v.version for v in list_versions(self.settings, name)}
            found = int(selector) if int(selector) in versions else None
        else:
            version = alias_version(self.settings, name, selector)
            found = version.version if version else None
        if found is not None:  # a miss is not cached: a version promoted a moment later is served at once
            with self._cache_lock:
                self._alias_cache[(name, selector)] = (now, found)
        return found

    def check_adapter_fits(self, route: ModelRoute, caps: ModelCapabilities) -> None:
        """A fine-tuned model trained on another checkpoint than the one served is refused at the door
        (it would load, and draw another look); versions registered before fingerprints pass."""
        if route.adapter is None or caps.fingerprint is None:
            return
        name, _, version = route.adapter.rpartition("/")
        record = self.adapter_digests.expected(name, int(version))
        if record is None or record.base_fingerprint in (None, caps.fingerprint):
            return
        raise AdapterError(
            f"model {route.model} was trained on another checkpoint of {route.base_model} than the one served "
            f"(base fingerprint {record.base_fingerprint[:12]}, served {caps.fingerprint[:12]}); fine-tune it "
            "again on the served base, or serve the checkpoint it was trained on",
            param="model",
        )

    def resolve_model(self, tenant: Tenant, model: str | None) -> ModelRoute:
        """Map a requested model id to base model, adapter version and deployment, or a 404 listing the choices."""
        model = model or self.base_models[0]
        if not model.startswith("ft:"):
            if model not in self.base_models:
                raise UnknownModelError(
                    f"model {model!r} does not exist; available: {', '.join(self.models_for(tenant))}", param="model"
                )
            return ModelRoute(model, model, None, self._deployment(tenant.name, model))
        parts = model.split(":")
        if len(parts) != 4 or not FINE_TUNED_REFERENCE.fullmatch(parts[3]):
            # Checked before anything reaches the registry: a suffix or selector is never free text.
            raise UnknownModelError(
                f"model {model[:200]!r} does not exist; fine-tuned models are named "
                "ft:<base>:<tenant>:<suffix> with an optional @<version> or @<alias>",
                param="model",
            )
        not_found = UnknownModelError(
            f"model {model!r} does not exist; available: {', '.join(self.models_for(tenant))}", param="model"
        )
        # Another tenant's fine-tuned id is "does not exist", exactly like a made-up one.
        if len(parts) != 4 or parts[2] != tenant.name or parts[1] not in self.base_models:
            raise not_found
        _, base, owner, suffix = parts
        suffix, _, selector = suffix.partition("@")
        name = registered_model_name(owner, suffix, base)
        version = self._registry_version(name, selector or PRODUCTION)
        if version is None:
            if selector:
                raise not_found
            raise UnknownModelError(
                f"model {model!r} has no production version yet; promote one with "
                f"`reelforge adapters promote --tenant {owner} --adapter {suffix}`",
                param="model",
            )
        return ModelRoute(model, base, f"{name}/{version}", self._deployment(owner, base))

    def models_for(self, tenant: Tenant) -> list[str]:
        """Base model ids plus the tenant's fine-tuned ids that have a production version."""
        ids = list(self.base_models)
        for name in tenant_adapter_names(self.settings, tenant.name):
            _, suffix, base = name.split(".", 2)
            if base in self.base_models and alias_version(self.settings, name, PRODUCTION) is not None:
                ids.append(f"ft:{base}:{tenant.name}:{suffix}")
        return ids

    # ---- videos ----------------------------------------------------------------------------
    def quota_check(self, tenant: Tenant) -> WindowState:
        """Count a generation request against the tenant's per-minute quota (429 when used up)."""
        limit = tenant.requests_per_minute or self.config.quotas.requests_per_minute
        return self.rates.check(tenant.name, limit)

    def moderate(self, tenant: Tenant, request: VideoCreateRequest, actor: str) -> None:
        """Refuse a prompt the tenant's policy blocks: audited, metered, and a 400 naming the rule."""
        moderator = self._moderators.get(tenant.name)
        if moderator is None:
            moderator = self._moderators[tenant.name] = PromptModerator(
                self.config.moderation.policies_for(tenant.name)
            )
        verdict = moderator.check(request.prompt)
        if verdict.allowed:
            return
        refusal_id = f"refusal-{secrets.token_hex(8)}"
        model = request.model or self.base_models[0]
        self.audit.record(
            tenant.name,
            actor,
            VIDEO_REFUSED,
            refusal_id,
            model=model,
            prompt=request.prompt,
            rule=verdict.rule,
            category=verdict.category,
        )
        self.meter.record(usage_record(tenant.name, REFUSAL, refusal_id, model, None, "none", 0.0, 0))
        raise refuse(verdict)

    def create(
        self,
        tenant: Tenant,
        request: VideoCreateRequest,
        route: ModelRoute,
        caps: ModelCapabilities,
        actor: str = "unknown",
        video_id: str | None = None,
        reference: bytes | None = None,
    ) -> VideoJob:
        """Validate against the model, check the concurrency quota, and record a queued job.

        `video_id` (derived from an Idempotency-Key) makes a rerun of the same create return the job
        the first run recorded, if it got that far before its server died. `reference` is the
        uploaded first frame of an image-to-video request.
        """
        if video_id is not None and (earlier := self.jobs.peek(video_id)) is not None and earlier.tenant == tenant.name:
            return earlier
        check_prompt(request.prompt)
        seconds = check_seconds(caps, request.seconds)
        width, height = check_size(caps, request.size)
        check_sampling(
            caps,
            steps=request.steps,
            guidance=request.guidance,
            guidance_2=request.guidance_2,
            seed=request.seed,
            negative_prompt=request.negative_prompt,
        )
        self.check_adapter_fits(route, caps)
        first_frame = fitted_reference(caps, reference, width, height, self.config.max_reference_bytes)
        job = VideoJob(
            tenant=tenant.name,
            model=route.model,
            base_model=route.base_model,
            adapter=route.adapter,
            deployment=route.deployment,
            prompt=request.prompt,
            negative_prompt=request.negative_prompt or None,  # used by the sampler's unconditional pass
            seconds=str(seconds),
            size=f"{width}x{height}",
            num_frames=caps.frames_for(seconds),
            fps=caps.fps,
            seed=0 if request.seed is None else request.seed,
            steps=request.steps,
            guidance=request.guidance,
            guidance_2=request.guidance_2,
            reference_sha256=digest(first_frame) if first_frame is not None else None,
            **({"id": video_id} if video_id else {}),
        )
        return self._record(tenant, job, actor, first_frame)

    def remix(self, tenant: Tenant, source_id: str, prompt: str, actor: str, video_id: str | None = None) -> VideoJob:
        """A new job from `prompt` with the source's model, adapter, size, length, seed, sampling and first frame."""
        if video_id is not None and (earlier := self.jobs.peek(video_id)) is not None and earlier.tenant == tenant.name:
            return earlier
        source = self.jobs.get(tenant.name, source_id)  # another tenant's id: 404, like a made-up one
        check_prompt(prompt)
        self.moderate(tenant, VideoCreateRequest(prompt=prompt, model=source.model), actor)
        first_frame = None
        if source.reference_sha256 is not None:
            try:
                first_frame = self.blobs.read_reference(tenant.name, source.id)
            except FileNotFoundError:
                raise UserInputError(
                    f"video {source_id}'s first frame is no longer stored (the video was deleted or expired); "
                    "create a new video with input_reference",
                    param="video_id",
                ) from None
        job = VideoJob(
            tenant=tenant.name,
            model=source.model,
            base_model=source.base_model,
            adapter=source.adapter,
            deployment=source.deployment,
            prompt=prompt,
            negative_prompt=source.negative_prompt,
            seconds=source.seconds,
            size=source.size,
            num_frames=source.num_frames,
            fps=source.fps,
            seed=source.seed,
            steps=source.steps,
            guidance=source.guidance,
            guidance_2=source.guidance_2,
            reference_sha256=source.reference_sha256,
            remixed_from=source.id,
            **({"id": video_id} if video_id else {}),
        )
        return self._record(tenant, job, actor, first_frame)

    def _record(self, tenant: Tenant, job: VideoJob, actor: str, first_frame: bytes | None) -> VideoJob:
        """Store the first frame, then record the job within the tenant's concurrency quota, and audit it."""
        limit = tenant.concurrent_jobs or self.config.quotas.concurrent_jobs
        if first_frame is not None:  # before the job exists: a generator never sees a job without its frame
            self.blobs.put_reference(tenant.name, job.id, first_frame)
        try:  # counted and inserted in one transaction: parallel requests cannot overshoot the quota
            self.jobs.create(job, max_active=limit)
        except QuotaExceeded as exc:
            if first_frame is not None:
                self.blobs.remove(tenant.name, job.id)
            check_concurrency(tenant.name, exc.active, limit, retry_after_s=max(1, self.config.poll_after_ms // 1000))
        self.audit.record(
            tenant.name,
            actor,
            VIDEO_REQUESTED,
            job.id,
            model=job.model,
            adapter=job.adapter,
            prompt=job.prompt,
            seconds=job.seconds,
            size=job.size,
            seed=job.seed,
            image_to_video=job.reference_sha256 is not None,
            remixed_from=job.remixed_from,
        )
        return job

    def get(self, tenant: Tenant, video_id: str) -> VideoJob:
        return self.jobs.get(tenant.name, video_id)

    def list(self, tenant: Tenant, after: str | None, limit: int, order: str) -> tuple[list[VideoJob], bool]:
        return self.jobs.list(tenant.name, after, limit, order)

    def delete(self, tenant: Tenant, video_id: str, actor: str = "unknown") -> VideoJob:
        """Delete the job and, if it has finished, its files (a running one's go when it ends)."""
        job = self.jobs.delete(tenant.name, video_id)
        self.audit.record(tenant.name, actor, VIDEO_DELETED, video_id, status=job.status)
        if job.status not in ACTIVE:
            self.blobs.remove(tenant.name, video_id)
            self.jobs.mark_files_removed(video_id)
        return job

    def content(self, tenant: Tenant, video_id: str, variant: str) -> tuple[bytes, str]:
        """A completed video's MP4 or thumbnail bytes and media type."""
        if variant not in VARIANTS:
            raise UserInputError(
                f"variant {variant!r} is not available; choose one of {', '.join(VARIANTS)}", param="variant"
            )
        job = self.get(tenant, video_id)
        if job.review == HELD:
            raise VideoNotReadyError(
                f"video {video_id} shows a face and is held for an operator's review; content is available once "
                "it is approved"
            )
        if job.review == REJECTED:
            raise VideoNotReadyError(f"video {video_id} was rejected in review: {job.review_note}")
        if job.status != COMPLETED:
            raise VideoNotReadyError(f"video {video_id} is {job.status}; content is available once it is completed")
        if job.files_removed or (job.expires_at is not None and job.expires_at < time.time()):
            raise VideoExpiredError(f"video {video_id} expired and its files were deleted")
        try:
            data = self.blobs.read(tenant.name, video_id, variant, fence=job.fence)
        except FileNotFoundError as exc:
            raise NotFoundError(f"video {video_id} has no {variant} file") from exc
        return data, VARIANTS[variant][1]

    # ---- usage -----------------------------------------------------------------------------
    def usage_summary(self, tenant: Tenant, start_date: str | None, end_date: str | None) -> list[UsageSummary]:
        """The tenant's metered usage by day (dates inclusive, YYYY-MM-DD, UTC)."""
        start = parse_day(start_date, "start_date") if start_date else None
        end = parse_day(end_date, "end_date") if end_date else None
        if start and end and start > end:
            raise UserInputError(f"start_date {start} is after end_date {end}", param="start_date")
        return self.meter.summary(tenant.name, start, end)

    # ---- audit -----------------------------------------------------------------------------
    def audit_events(self, tenant: Tenant, after: int | None, limit: int):
        """The tenant's own audit records, oldest first."""
        return self.audit.events(tenant.name, after, limit)
