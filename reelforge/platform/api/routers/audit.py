"""`/v1/audit`: the tenant's own append-only audit records, oldest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from reelforge.platform.api.dependencies import Authenticated, Services
from reelforge.platform.api.pagination import AuditLimit, Page, page_of
from reelforge.platform.api.schemas import ERROR_RESPONSES, AuditEventObject

# Record ids are 64-bit: a cursor beyond that is refused as a 400, not sent to the database.
AuditCursor = Annotated[int | None, Query(ge=0, lt=2**63, description="The last record id of the previous page.")]

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=ERROR_RESPONSES)


@router.get("", response_model=Page[AuditEventObject])
async def audit(
    caller: Authenticated, services: Services, after: AuditCursor = None, limit: AuditLimit = 100
) -> Page[AuditEventObject]:
    events, has_more = await run_in_threadpool(services.videos.audit_events, caller.tenant, after, limit)
    return page_of(AuditEventObject, [AuditEventObject.of(e) for e in events], has_more)
