"""The generator deployment: one base model per replica, tenant adapters multiplexed (LRU) on top.

The ingress's dispatcher calls `generate(video_id)` with the job's adapter key as the multiplexed
model id, so Serve routes a tenant's jobs to replicas that already hold its adapter when it can.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from ray import serve

from reelforge.errors import ReelforgeError
from reelforge.platform.config import GeneratorConfig, ServeAppConfig
from reelforge.platform.serving.adapter_loader import (
    LoadedAdapter,
    load_registered_adapter,
)
from reelforge.platform.serving.generation_worker import GenerationWorker

logger = logging.getLogger(__name__)


@serve.deployment
class VideoGenerator:
    """Loads the base model once; generates jobs with the adapter Serve's multiplexing hands it."""

    def __init__(self, app_config: dict, generator_config: dict) -> None:
        # This process is the replica's own: MLflow's download bars would only clutter its log.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        self.app = ServeAppConfig.model_validate(app_config)
        generator = GeneratorConfig.model_validate(generator_config)
        self.worker = GenerationWorker(self.app, generator)
        context = serve.get_replica_context()
        self.replica = f"{context.deployment}#{context.replica_tag}"

        async def load(key: str) -> LoadedAdapter:
            return await asyncio.to_thread(
                load_registered_adapter, self.worker.model, self.worker.settings, key, self.worker.lock
            )

        # Wrapped here rather than decorated on the class so the LRU size comes from the serve config.
        self._adapter = serve.multiplexed(max_num_models_per_replica=generator.adapter_cache_size)(load)
        logger.info("generator replica %s ready with %s", self.replica, generator.model)

    def capabilities(self) -> dict:
        """The sizes and durations this model supports (the ingress validates requests with them)."""
        return self.worker.capabilities.to_dict()

    async def generate(self, video_id: str, fence: int) -> dict:
        """Run claim `fence` of one job to completion; the job store carries its progress and outcome."""
        key = serve.get_multiplexed_model_id()
        adapter, waited = None, None
        if key:
            started = time.perf_counter()
            try:
                adapter = await self._adapter(key)
            except ReelforgeError as exc:  # not in the registry, or its bytes do not match the registered hash
                job = await asyncio.to_thread(self.worker.jobs.peek, video_id)
                if job is None or job.fence != fence:
                    return {"id": video_id, "status": "superseded", "superseded": True}
                return await asyncio.to_thread(self.worker.fail, job, self.replica, exc.code, exc.message)
            # Anything else (its artifact unreachable, say) propagates: the dispatcher releases the
            # claim, and the job is retried after a back-off until it runs out of attempts.
            waited = time.perf_counter() - started
        return await asyncio.to_thread(self.worker.run, video_id, fence, adapter, self.replica, waited)
