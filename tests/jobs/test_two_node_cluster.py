"""A real two-node Ray cluster on this machine (`ray.cluster_utils.Cluster`: two raylets, separate
resources): one node's SQLite and local directories are refused by name; with PostgreSQL (platform
and MLflow) and the home declared a shared filesystem, a fine-tune runs one worker per node, and
generation is served by a replica pinned to the second node through the serve config's `resources`."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from ray._common.test_utils import wait_for_condition

from reelforge.jobs.finetune import run_finetune
from reelforge.jobs.finetune_config import build_config
from reelforge.jobs.shared_state import SplitStateError
from reelforge.models.tiny.brand_looks import BrandLook
from reelforge.models.tiny.footage import write_footage
from reelforge.settings import Settings
from tests.harness import fresh_postgres_database, start_test_ray

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
    with fresh_postgres_database() as database_url, fresh_postgres_database() as mlflow_url:
        _run_on_two_nodes(cluster, nodes, tmp_path, database_url, mlflow_url)


def _run_on_two_nodes(cluster, nodes: dict, tmp_path: Path, database_url: str, mlflow_url: str) -> None:
    from reelforge.platform.config import ServeAppConfig
    from reelforge.platform.serving.app_builder import build_app

    local = Settings(home=tmp_path / "home", ray_address=cluster.address)
    config = build_config({"tenant": "acme", "data": str(tmp_path / "footage")}, ["steps=1"])
    with pytest.raises(SplitStateError) as refused:
        run_finetune(config, local)
    for setting in ("database_url", "mlflow_tracking_uri", "storage_url", "train_storage_url"):
        assert setting in refused.value.message, refused.value.message
    assert "2-node Ray cluster" in refused.value.message
    with pytest.raises(SplitStateError, match="REELFORGE_DATABASE_URL"):
        build_app(ServeAppConfig(home=str(local.home)))

    # Both "nodes" are processes of this machine, so the home is one filesystem they both see.
    settings = Settings(
        home=tmp_path / "home",
        ray_address=cluster.address,
        database_url=database_url,
        mlflow_tracking_uri=mlflow_url,
        shared_filesystem=True,
    )
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
    from reelforge.platform.stores.tenants import TenantStore
    from tests.harness import PROMPT, free_port

    promote(settings, result.registered_model, result.version)
    port = free_port()
    app = ServeAppConfig.model_validate(
        {
            "home": str(settings.home),
            "database_url": database_url,
            "mlflow_tracking_uri": mlflow_url,
            "shared_filesystem": True,
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
