"""What routes depend on: the platform's services (one set per ingress replica) and the authenticated caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from reelforge.platform.config import ServeAppConfig
from reelforge.platform.fine_tuning.file_service import FileService
from reelforge.platform.fine_tuning.service import FineTuneService
from reelforge.platform.fine_tuning.upload_validation import UploadValidator
from reelforge.platform.serving.generation_limits import ModelCapabilities
from reelforge.platform.serving.video_service import VideoService
from reelforge.platform.stores.idempotency_keys import IdempotencyStore
from reelforge.platform.stores.tenants import Tenant, masked_key


@dataclass
class PlatformServices:
    """Everything the routes call: services without HTTP, and the hooks that wake background loops."""

    config: ServeAppConfig
    videos: VideoService
    files: FileService
    validations: UploadValidator
    fine_tunes: FineTuneService
    idempotency: IdempotencyStore
    capabilities: Callable[[str], Awaitable[ModelCapabilities]]  # base model -> what it can generate
    video_created: Callable[[], None] = lambda: None  # wakes the dispatcher
    fine_tunes_changed: Callable[[], None] = lambda: None  # wakes the fine-tune supervisor


@dataclass(frozen=True)
class Caller:
    """The authenticated tenant and who acted for it (the key, masked), for scoping and the audit log."""

    tenant: Tenant
    actor: str


def platform_services(request: Request) -> PlatformServices:
    return request.app.state.services


Services = Annotated[PlatformServices, Depends(platform_services)]


async def authenticated_caller(request: Request, services: Services) -> Caller:
    """The tenant of the `Authorization: Bearer` key; a 401 otherwise."""
    authorization = request.headers.get("authorization")
    tenant = await run_in_threadpool(services.videos.authenticate, authorization)
    key = (authorization or "").partition(" ")[2].strip()
    return Caller(tenant, masked_key(key, tenant.name))


Authenticated = Annotated[Caller, Depends(authenticated_caller)]
