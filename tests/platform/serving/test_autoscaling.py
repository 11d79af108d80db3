"""Generator autoscaling on a real Serve app: a burst grows the shared deployment to its second
replica, which serves jobs; idle, it shrinks back. A dedicated tenant's jobs run only on its own
deployment, and nobody else's run there."""

from __future__ import annotations

import pytest
from ray import serve
from ray._common.test_utils import wait_for_condition

from tests.harness import PROMPT, deploy_platform

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAST_SCALING = {
    "min_replicas": 1,
    "max_replicas": 2,
    "target_ongoing_requests": 1,
    "upscale_delay_s": 0.5,
    "downscale_delay_s": 5,
    "look_back_period_s": 1,
    "metrics_interval_s": 0.5,
}


def running_replicas(app: str, deployment: str) -> int:
    states = serve.status().applications[app].deployments[deployment].replica_states
    return sum(count for state, count in states.items() if str(getattr(state, "value", state)) == "RUNNING")


@pytest.fixture(scope="module")
def scaling_platform(serve_port, tmp_path_factory):
    platform = deploy_platform(
        "scaling",
        serve_port,
        tmp_path_factory.mktemp("scaling-home"),
        generators=[{"num_cpus": 0.5, "max_ongoing_requests": 1, "adapter_cache_size": 1, "autoscaling": FAST_SCALING}],
        dedicated=[{"tenant": "vip", "autoscaling": {"min_replicas": 1, "max_replicas": 1}}],
        quotas={"requests_per_minute": 1000, "concurrent_jobs": 50},
        dispatch_interval_s=0.2,
    )
    yield platform
    serve.delete(platform.name)


def test_burst_scales_up_serves_on_both_replicas_then_scales_down(scaling_platform):
    app, shared, dedicated = scaling_platform.name, "generator-reelforge-tiny", "generator-reelforge-tiny-vip"
    assert running_replicas(app, shared) == 1
    keys = {name: scaling_platform.tenants.create(name)[1] for name in ("burst", "vip")}
    with scaling_platform.client(keys["burst"]) as burst, scaling_platform.client(keys["vip"]) as vip:
        burst_ids = [
            burst.post("/videos", json={"prompt": PROMPT, "steps": 100, "seed": i}).json()["id"] for i in range(8)
        ]
        vip_ids = [vip.post("/videos", json={"prompt": PROMPT, "steps": 30, "seed": i}).json()["id"] for i in range(2)]
        wait_for_condition(lambda: running_replicas(app, shared) == 2, timeout=120, retry_interval_ms=200)
        # More work the moment the second replica is up: on a loaded machine its start-up can take as
        # long as the first burst, and it must be seen serving, not just running.
        burst_ids += [
            burst.post("/videos", json={"prompt": PROMPT, "steps": 100, "seed": 10 + i}).json()["id"] for i in range(4)
        ]

        def all_finished() -> bool:
            return all(scaling_platform.jobs.peek(v).status in ("completed", "failed") for v in burst_ids + vip_ids)

        wait_for_condition(all_finished, timeout=240, retry_interval_ms=250)
    burst_jobs = [scaling_platform.jobs.peek(v) for v in burst_ids]
    vip_jobs = [scaling_platform.jobs.peek(v) for v in vip_ids]
    assert all(j.status == "completed" for j in burst_jobs + vip_jobs)
    burst_replicas = {j.replica for j in burst_jobs}
    assert len(burst_replicas) == 2, f"the second replica served nothing: {burst_replicas}"
    assert all(r.startswith(f"{shared}#") for r in burst_replicas)
    assert all(j.deployment == dedicated and j.replica.startswith(f"{dedicated}#") for j in vip_jobs)
    assert running_replicas(app, dedicated) == 1
    wait_for_condition(lambda: running_replicas(app, shared) == 1, timeout=120, retry_interval_ms=250)
