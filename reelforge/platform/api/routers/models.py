"""`/v1/models`: the base models served here and the tenant's own fine-tuned `ft:` models."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from reelforge.platform.api.dependencies import Authenticated, Services
from reelforge.platform.api.schemas import ERROR_RESPONSES, ModelList, ModelObject

router = APIRouter(prefix="/v1/models", tags=["models"], responses=ERROR_RESPONSES)


@router.get("", response_model=ModelList)
async def list_models(caller: Authenticated, services: Services) -> ModelList:
    ids = await run_in_threadpool(services.videos.models_for, caller.tenant)
    return ModelList(data=[ModelObject.of(i, caller.tenant.name) for i in ids])


@router.get("/{model_id}", response_model=ModelObject)
async def retrieve_model(model_id: str, caller: Authenticated, services: Services) -> ModelObject:
    route = await run_in_threadpool(services.videos.resolve_model, caller.tenant, model_id)
    return ModelObject.of(route.model, caller.tenant.name)
