"""`/v1/audit`: the tenant's own append-only audit records, oldest first."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from reelforge.platform.api.dependencies import Authenticated, Services
from reelforge.platform.api.pagination import AuditLimit, Page, page_of
from reelforge.platform.api.schemas import ERROR_RESPONSES, AuditEventObject

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=ERROR_RESPONSES)


@router.get("", response_model=Page[AuditEventObject])
async def audit(
    caller: Authenticated, services: Services, after: int | None = None, limit: AuditLimit = 100
) -> Page[AuditEventObject]:
    events, has_more = await run_in_threadpool(services.videos.audit_events, caller.tenant, after, limit)
    return page_of(AuditEventObject, [AuditEventObject.of(e) for e in events], has_more)
