"""The ingress deployment: the FastAPI app inside Ray Serve (CPU only), one per ingress replica.

Each replica builds the platform's services, runs the dispatcher that feeds the generator
deployments, the supervisor that runs fine-tuning jobs and the sweep that takes over upload
validations whose replica died, and serves `create_api`'s routes.
Requests are authenticated, routed, checked and recorded; generation never happens here.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from ray import serve

from reelforge.platform.api.app import create_api
from reelforge.platform.api.dependencies import PlatformServices
from reelforge.platform.config import ServeAppConfig
from reelforge.platform.fine_tuning.file_service import FileService
from reelforge.platform.fine_tuning.service import FineTuneService
from reelforge.platform.fine_tuning.supervisor import FineTuneSupervisor
from reelforge.platform.fine_tuning.upload_validation import UploadValidator
from reelforge.platform.serving.dispatcher import JobDispatcher
from reelforge.platform.serving.generation_limits import ModelCapabilities
from reelforge.platform.serving.video_service import VideoService
from reelforge.platform.stores.idempotency_keys import IdempotencyStore

INGRESS_CPUS = 0.25  # its work is I/O: the database, handles, storage


@serve.deployment(ray_actor_options={"num_cpus": INGRESS_CPUS})
@serve.ingress()
class VideoAPI:
    """Authenticates, validates and records requests and uploads; its dispatcher feeds the generators."""

    def __init__(
        self, app_config: dict, generators: dict, capacity: dict[str, int], base_deployments: dict[str, str]
    ) -> None:
        self.config = ServeAppConfig.model_validate(app_config)
        self.generators = generators  # deployment name -> handle
        self.base_deployments = base_deployments  # base model -> its shared deployment (for capabilities)
        self._capabilities: dict[str, ModelCapabilities] = {}
        videos = VideoService(self.config)
        self.dispatcher = JobDispatcher(
            videos.jobs,
            videos.blobs,
            generators,
            capacity,
            self.config.job_lease_s,
            self.config.dispatch_interval_s,
            fallback=base_deployments,
        )
        self.supervisor = FineTuneSupervisor(self.config)
        loop = asyncio.get_running_loop()
        files = FileService(self.config)
        # A validated file may be what a `validating_files` job waits for.
        self.validations = UploadValidator(files, finished=lambda: loop.call_soon_threadsafe(self.supervisor.wake))
        self.services = PlatformServices(
            config=self.config,
            videos=videos,
            files=files,
            validations=self.validations,
            fine_tunes=FineTuneService(self.config),
            idempotency=IdempotencyStore(videos.settings.resolved_database_url),
            capabilities=self._capabilities_of,
            video_created=self.dispatcher.wake,
            fine_tunes_changed=self.supervisor.wake,
        )
        # Started at once, not on the first request: jobs left from before a restart must resume
        # even if no client calls.
        self._loop_task = loop.create_task(self.dispatcher.run())
        self._supervisor_task = loop.create_task(self.supervisor.run())
        self._validation_sweep_task = loop.create_task(self.validations.run())

    def __serve_build_asgi_app__(self) -> FastAPI:
        """Serve calls this after `__init__`: the app, bound to this replica's services."""
        return create_api(self.services)

    async def _capabilities_of(self, base_model: str) -> ModelCapabilities:
        caps = self._capabilities.get(base_model)
        if caps is None:
            handle = self.generators[self.base_deployments[base_model]]
            caps = ModelCapabilities.from_dict(await handle.capabilities.remote())
            self._capabilities[base_model] = caps
        return caps
