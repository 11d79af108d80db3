"""`/healthz`: the ingress answers (no authentication, no database)."""

from fastapi import APIRouter

from reelforge.platform.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health()
