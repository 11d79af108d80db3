"""The typed Serve application builder: `reelforge.platform.serving.app_builder:build_app`.

    serve run reelforge.platform.serving.app_builder:build_app           # defaults
    serve deploy examples/serve.yaml                           # on a cluster (args: ServeAppConfig)
    reelforge serve --config examples/serve.yaml               # local, loopback only

It binds one generator deployment per base model, one more per dedicated tenant, and the ingress
that holds handles to all of them.
"""

from __future__ import annotations

import ray
from ray.serve import Application

from reelforge.jobs.shared_state import alive_ray_nodes, refuse_split_state
from reelforge.platform.api.ingress import INGRESS_CPUS, VideoAPI
from reelforge.platform.config import (
    AutoscalingSection,
    GeneratorConfig,
    ServeAppConfig,
    deployment_name,
)
from reelforge.platform.serving.generator import VideoGenerator

APP_NAME = "reelforge"


def _gpus_per_replica(generator: GeneratorConfig) -> float:
    if generator.num_gpus is not None:
        return generator.num_gpus
    return 1.0 if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


def _generator(
    app: ServeAppConfig, generator: GeneratorConfig, name: str, autoscaling: AutoscalingSection
) -> Application:
    options = VideoGenerator.options(
        name=name,
        ray_actor_options={
            "num_cpus": generator.num_cpus,
            "num_gpus": _gpus_per_replica(generator),
            **({"resources": generator.resources} if generator.resources else {}),
        },
        max_ongoing_requests=generator.max_ongoing_requests,
        autoscaling_config=autoscaling.to_ray(),
        graceful_shutdown_timeout_s=generator.graceful_shutdown_timeout_s,
        # Loading a real checkpoint takes minutes; Serve must not call a loading replica unhealthy.
        health_check_timeout_s=600,
    )
    return options.bind(app.model_dump(), generator.model_dump())


def generator_capacity(generator: GeneratorConfig, autoscaling: AutoscalingSection) -> int:
    """Jobs the dispatcher keeps in flight for one deployment: enough to fill every replica it may grow to."""
    return autoscaling.max_replicas * generator.max_ongoing_requests


def build_app(args: ServeAppConfig) -> Application:
    """Build the reelforge Serve application from its config (Serve validates `args` into it)."""
    app = (args if isinstance(args, ServeAppConfig) else ServeAppConfig.model_validate(args or {})).pinned()
    refuse_split_state(app.settings(), alive_ray_nodes(), "serving")
    handles: dict[str, Application] = {}
    capacity: dict[str, int] = {}
    base_deployments: dict[str, str] = {}
    for generator in app.generators:
        name = deployment_name(generator.base_model)
        handles[name] = _generator(app, generator, name, generator.autoscaling)
        capacity[name] = generator_capacity(generator, generator.autoscaling)
        base_deployments[generator.base_model] = name
    for dedicated in app.dedicated:
        generator = app.generator_for(dedicated.model or app.generators[0].base_model)
        name = deployment_name(generator.base_model, dedicated.tenant)
        handles[name] = _generator(app, generator, name, dedicated.autoscaling)
        capacity[name] = generator_capacity(generator, dedicated.autoscaling)
    ingress = VideoAPI.options(
        num_replicas=app.ingress_replicas,
        max_ongoing_requests=app.ingress_max_ongoing_requests,
        max_queued_requests=app.ingress_max_queued_requests,
        # `ray_actor_options` replaces the decorator's whole dict, so its CPU share is restated.
        **(
            {"ray_actor_options": {"num_cpus": INGRESS_CPUS, "resources": app.ingress_resources}}
            if app.ingress_resources
            else {}
        ),
    )
    return ingress.bind(app.model_dump(), handles, capacity, base_deployments)
