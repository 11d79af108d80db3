"""The FastAPI application: OpenAI's Videos, Models, Files and Fine-tuning APIs plus audit and usage, under /v1."""

from __future__ import annotations

from fastapi import FastAPI

from reelforge import __version__
from reelforge.platform.api.dependencies import PlatformServices
from reelforge.platform.api.errors import install_error_handlers
from reelforge.platform.api.routers import (
    audit,
    files,
    fine_tuning,
    health,
    models,
    usage,
    videos,
)


def create_api(services: PlatformServices) -> FastAPI:
    """An app whose routes call `services`; errors leave in OpenAI's shape."""
    api = FastAPI(
        title="reelforge",
        version=__version__,
        description="OpenAI-compatible Videos and Fine-tuning APIs for tenant fine-tuned video models",
    )
    api.state.services = services
    install_error_handlers(api)
    for router in (
        health.router,
        videos.router,
        models.router,
        files.router,
        fine_tuning.router,
        audit.router,
        usage.router,
    ):
        api.include_router(router)
    return api
