"""`/v1/usage`: the tenant's metered usage by day (generations, trainings, refusals)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from reelforge.platform.api.dependencies import Authenticated, Services
from reelforge.platform.api.schemas import ERROR_RESPONSES, UsageReport

router = APIRouter(prefix="/v1/usage", tags=["usage"], responses=ERROR_RESPONSES)


@router.get("", response_model=UsageReport)
async def usage(
    caller: Authenticated, services: Services, start_date: str | None = None, end_date: str | None = None
) -> UsageReport:
    """Usage between two UTC dates (YYYY-MM-DD, inclusive)."""
    rows = await run_in_threadpool(services.videos.usage_summary, caller.tenant, start_date, end_date)
    return UsageReport.of(caller.tenant.name, rows)
