"""A real two-node Ray cluster on this machine (`ray.cluster_utils.Cluster`: two raylets, separate
resources): a fine-tune runs one worker per node, and generation is served by a replica pinned to
the second node through the serve config's `resources`."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from ray._common.test_utils import wait_for_condition

from reelforge.jobs.finetune import run_finetune
from reelforge.jobs.finetune_config import build_config
from reelforge.models.tiny.brand_looks import BrandLook
from reelforge.models.tiny.footage import write_footage
from reelforge.settings import Settings
from tests.harness import start_test_ray

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.cluster]


@pytest.fixture
def two_nodes(tmp_path: Path):
    """Head node `node-a` and worker node `node-b`, 2 logical CPUs each; the suite's cluster is restored after."""
    import ray
    from ray.cluster_utils import Cluster

    was_connected = ray.is_initialized()
    if was_connected:
        ray.shutdown()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 3, "resources": {"node-a": 1}, "object_store_memory": 200 * 1024 * 1024},
    )
    cluster.add_node(num_cpus=3, resources={"node-b": 1}, object_store_memory=200 * 1024 * 1024)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    nodes = {next(k for k in n["Resources"] if k.startswith("node-")): n["NodeID"] for n in ray.nodes() if n["Alive"]}
    try:
        yield cluster, nodes
    finally:
        ray.shutdown()
        cluster.shutdown()
        if was_connected:
            start_test_ray(tmp_path / "ray-home")


def _actors_on(class_part: str) -> list:
    from ray.util.state import list_actors

    return [a for a in list_actors(limit=1000, detail=True) if class_part in (a.class_name or "")]


def test_finetune_spreads_workers_and_serving_runs_on_the_second_node(two_nodes, tmp_path: Path):
    cluster, nodes = two_nodes
    assert set(nodes) == {"node-a", "node-b"}
    settings = Settings(home=tmp_path / "home", ray_address=cluster.address)
    footage = tmp_path / "footage"
    write_footage(footage, count=4, seed=6, brand=BrandLook("corner-block", "lime"))
    config = build_config(
        {"tenant": "acme", "data": str(footage)},
        [
            "workers=2",
            "placement_strategy=STRICT_SPREAD",
            "steps=3",
            "batch_per_worker=1",
            "world_eval_prompts=0",
            "validation_videos=0",
            "holdout_fraction=0",
            "checkpoint_every=3",
            "eval_every=3",
        ],
    )
    result = run_finetune(config, settings)
    assert result.version == 1 and result.metrics["step"] == 3
    worker_nodes = {a.node_id for a in _actors_on("TrainWorker")}
    assert worker_nodes == set(nodes.values()), "one training worker per node"

    from ray import serve

    from reelforge.jobs.adapter_registry import promote
    from reelforge.platform.config import ServeAppConfig
    from reelforge.platform.serving.app_builder import build_app
    from reelforge.platform.stores.tenants import TenantStore
    from tests.harness import PROMPT, free_port

    promote(settings, result.registered_model, result.version)
    port = free_port()
    app = ServeAppConfig.model_validate(
        {
            "home": str(settings.home),
            "dispatch_interval_s": 0.2,
            "generators": [
                {"num_cpus": 1, "resources": {"node-b": 0.01}, "autoscaling": {"min_replicas": 1, "max_replicas": 1}}
            ],
        }
    ).pinned()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(build_app(app), name="reelforge", route_prefix="/")
        key = TenantStore(app.database_url).create("acme")[1]
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}/v1", headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as http:
            video = http.post("/videos", json={"prompt": PROMPT, "model": result.fine_tuned_model}).json()
            wait_for_condition(
                lambda: http.get(f"/videos/{video['id']}").json()["status"] == "completed",
                timeout=180,
                retry_interval_ms=250,
            )
            assert http.get(f"/videos/{video['id']}/content").content[4:8] == b"ftyp"
        generators = [a for a in _actors_on("generator-reelforge-tiny") if a.state == "ALIVE"]
        assert generators and {a.node_id for a in generators} == {nodes["node-b"]}
    finally:
        serve.shutdown()
