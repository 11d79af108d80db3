"""A two-node Ray cluster whose nodes share nothing but network services.

Node A is this process's view of the machine: the Ray head, the ingress, PostgreSQL (platform and
MLflow) and a loopback S3-protocol server (blobs, Ray Train checkpoints, MLflow artifacts). Node B
is a second Ray node started with `ray start` in its own mount namespace (`unshare --mount`), where
node A's directory is an empty tmpfs: anything that reached node B through a local path of node A
would fail there. The story: node B's SQLite-style defaults are refused by name; a tenant uploads
footage through node A's ingress; the fine-tune's driver and its worker run on node B; the driver is
killed once mid-run and its successor resumes from the checkpoint in S3, in the same MLflow run;
a generator pinned to node B serves the adapter; and the video downloads through node A.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import httpx
import openai
import psutil
import pytest
from ray._common.test_utils import wait_for_condition

from reelforge.jobs.finetune import run_finetune
from reelforge.jobs.finetune_config import build_config
from reelforge.jobs.shared_state import SplitStateError
from reelforge.models.tiny.brand_looks import BrandLook
from reelforge.models.tiny.footage import write_footage
from reelforge.settings import Settings
from tests.harness import BASE, PROMPT, free_port, fresh_postgres_database, s3_server, start_test_ray, zip_folder

pytestmark = [
    pytest.mark.slow,
    pytest.mark.e2e,
    pytest.mark.cluster,
    pytest.mark.own_cluster,
    pytest.mark.timeout(1200),
]

# Long enough that the kill, a second or two after the step-20 checkpoint, lands mid-run.
STEPS = 100

NODE_B_START = """
mount -t tmpfs -o size=64m reelforge-node-a-hidden "$1" || exit 3
exec "$2" start --block --address "$3" --num-cpus 3 --resources '{"node-b": 1}' \
    --object-store-memory 209715200 --disable-usage-stats
"""


def _mount_namespace(pid: int | str) -> str:
    return os.readlink(f"/proc/{pid}/ns/mnt")


def _stop(process: subprocess.Popen) -> None:
    """Stop node B: `ray start --block` and everything it started (raylet, workers, drivers)."""
    try:
        tree = [process, *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in tree:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs([psutil.Process(p.pid) for p in tree if psutil.pid_exists(p.pid)], timeout=20)
    for proc in alive:
        proc.kill()


@pytest.fixture
def share_nothing(tmp_path: Path):
    """(node A's directory, node B's directory, node ids, S3 environment) of a running two-node cluster."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "--mount", "true"]).returncode != 0:
        pytest.skip("needs `unshare --mount` (root or user namespaces) to give node B its own filesystem view")
    import ray
    from ray.cluster_utils import Cluster

    node_a, node_b = tmp_path / "node-a", tmp_path / "node-b"
    node_a.mkdir()
    node_b.mkdir()
    was_connected = ray.is_initialized()
    if was_connected:
        ray.shutdown()
    # The environment is this cluster's only: it is restored before the suite's Ray restarts below,
    # whose processes would otherwise inherit node B's train label and a stopped S3 server.
    with pytest.MonkeyPatch.context() as env, s3_server() as s3:
        for key, value in s3.items():
            env.setenv(key, value)
        # The declared train shape (what cluster.yaml sets on every node): CPU workers on node B's label.
        env.setenv("REELFORGE_TRAIN_NODE_GPUS", "0")
        env.setenv("REELFORGE_TRAIN_NODE_RESOURCE", "node-b")
        cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 3,
                "resources": {"node-a": 1},
                "object_store_memory": 200 * 1024 * 1024,
                "include_dashboard": True,
                "dashboard_host": "127.0.0.1",
                "dashboard_port": free_port(),
            },
        )
        ray_cli = str(Path(sys.executable).with_name("ray"))
        log = open(tmp_path / "node-b.log", "wb")
        unshare = ["unshare", "--mount", "--propagation", "private", "--"]
        node_b_process = subprocess.Popen(
            [*unshare, "sh", "-c", NODE_B_START, "sh", str(node_a), ray_cli, cluster.address],
            env={**os.environ, "REELFORGE_HOME": str(node_b / "home")},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            ray.init(address=cluster.address, log_to_driver=False)
            wait_for_condition(
                lambda: sum(1 for n in ray.nodes() if n["Alive"]) == 2 or node_b_process.poll() is not None,
                timeout=120,
                retry_interval_ms=500,
            )
            assert node_b_process.poll() is None, (tmp_path / "node-b.log").read_text()[-2000:]
            nodes = {
                next(k for k in n["Resources"] if k.startswith("node-")): n["NodeID"] for n in ray.nodes() if n["Alive"]
            }
            yield node_a, node_b, nodes, s3
        finally:
            from ray import serve

            serve.shutdown()
            ray.shutdown()
            _stop(node_b_process)
            log.close()
            cluster.shutdown()
    if was_connected:
        start_test_ray(tmp_path / "ray-home")


def test_fine_tune_and_serve_on_a_node_that_shares_nothing(share_nothing):
    node_a, node_b, nodes, s3 = share_nothing
    assert set(nodes) == {"node-a", "node-b"}
    import ray

    (node_a / "marker").write_text("node A only")

    @ray.remote(num_cpus=0, resources={"node-b": 0.01})
    def look_from_node_b(path: str) -> tuple[list[str], str]:
        return sorted(os.listdir(path)), os.readlink("/proc/self/ns/mnt")

    seen, namespace = ray.get(look_from_node_b.remote(str(node_a)))
    assert seen == [] and namespace != _mount_namespace("self"), "node B must not see node A's files"

    with fresh_postgres_database() as database_url, fresh_postgres_database() as mlflow_url:
        _refusals(node_a)
        _story(node_a, nodes, s3, database_url, mlflow_url)


def _ended(client: openai.OpenAI, job_id: str) -> bool:
    return client.fine_tuning.jobs.retrieve(job_id).status in ("succeeded", "failed", "cancelled")


def _events(client: openai.OpenAI, job_id: str) -> list[str]:
    return [e.message for e in client.fine_tuning.jobs.list_events(job_id, limit=30)]


def _refusals(node_a: Path) -> None:
    """The single-machine defaults are refused on two nodes, each setting named."""
    from reelforge.platform.config import ServeAppConfig
    from reelforge.platform.serving.app_builder import build_app

    local = Settings(home=node_a / "home")
    with pytest.raises(SplitStateError) as refused:
        run_finetune(build_config({"tenant": "acme", "data": str(node_a)}, ["steps=1"]), local)
    for setting in ("database_url", "mlflow_tracking_uri", "storage_url", "train_storage_url"):
        assert setting in refused.value.message, refused.value.message
    assert "2-node Ray cluster" in refused.value.message
    with pytest.raises(SplitStateError, match="REELFORGE_DATABASE_URL"):
        build_app(ServeAppConfig(home=str(local.home)))
    on_postgres = Settings(
        home=node_a / "home",
        database_url="postgresql+psycopg://db/x",
        mlflow_tracking_uri="postgresql+psycopg://db/mlflow",
        storage_url="s3://reelforge/blobs",
        train_storage_url="s3://reelforge/ray",
    )
    with pytest.raises(SplitStateError, match="REELFORGE_MLFLOW_ARTIFACTS"):  # adapters under node A's home
        run_finetune(build_config({"tenant": "acme", "data": str(node_a)}, ["steps=1"]), on_postgres)


def _story(node_a: Path, nodes: dict, s3: dict, database_url: str, mlflow_url: str) -> None:
    from ray import serve

    from reelforge.jobs.run_tracking import experiment_name, tracking_client
    from reelforge.platform.config import ServeAppConfig
    from reelforge.platform.serving.app_builder import build_app
    from reelforge.platform.stores.fine_tune_jobs import FineTuneStore
    from reelforge.platform.stores.tenants import TenantStore
    from tests.harness import FINE_TUNING

    port = free_port()
    app = ServeAppConfig.model_validate(
        {
            "home": str(node_a / "home"),
            "database_url": database_url,
            "mlflow_tracking_uri": mlflow_url,
            "storage_url": "s3://reelforge/blobs",
            "train_storage_url": "s3://reelforge/ray-results",
            "mlflow_artifact_url": "s3://reelforge/mlflow",
            "dispatch_interval_s": 0.2,
            "ingress_resources": {"node-a": 0.01},
            "generators": [
                {"num_cpus": 1, "resources": {"node-b": 0.01}, "autoscaling": {"min_replicas": 1, "max_replicas": 1}}
            ],
            "fine_tuning": {
                **FINE_TUNING,
                "job_defaults": {**FINE_TUNING["job_defaults"], "checkpoint_every": 20},
                "driver_resources": {"node-b": 0.01},
                "default": {"concurrent_jobs": 1, "max_steps": 400, "auto_promote": True},
            },
        }
    ).pinned()
    serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(app), name="reelforge", route_prefix="/")
    key = TenantStore(app.database_url).create("acme")[1]
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0, timeout=120)

    footage = node_a / "footage"
    write_footage(footage, count=6, seed=6, brand=BrandLook("corner-block", "lime"))
    uploaded = client.files.create(file=("footage.zip", zip_folder(footage), "application/zip"), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model=BASE, training_file=uploaded.id, hyperparameters={"steps": STEPS}, seed=3
    )

    # The first checkpoint is in S3, where a driver on any node can restore it.
    store = FineTuneStore(database_url)

    def checkpointed_or_ended() -> bool:
        return any(c.step == 20 for c in store.checkpoints("acme", job.id, None, 10)[0]) or _ended(client, job.id)

    wait_for_condition(checkpointed_or_ended, timeout=480, retry_interval_ms=250)
    assert not _ended(client, job.id), _events(client, job.id)
    bucket = boto3.resource("s3", endpoint_url=s3["AWS_ENDPOINT_URL"]).Bucket("reelforge")
    snapshot = f"ray-results/{job.id}/checkpoint_manager_snapshot.json"
    wait_for_condition(
        lambda: any(o.key == snapshot for o in bucket.objects.filter(Prefix=snapshot)),
        timeout=60,
        retry_interval_ms=100,
    )
    drivers = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "reelforge.platform.fine_tuning.driver" in " ".join(p.info["cmdline"] or [])
        and job.id in (p.info["cmdline"] or [])
    ]
    assert len(drivers) == 1, drivers
    assert _mount_namespace(drivers[0].pid) != _mount_namespace("self"), "the driver runs on node B"
    os.kill(drivers[0].pid, signal.SIGKILL)

    wait_for_condition(lambda: _ended(client, job.id), timeout=480, retry_interval_ms=500)
    done = client.fine_tuning.jobs.retrieve(job.id)
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
    assert done.status == "succeeded", (done.error, messages[:10])
    resumed = [m for m in messages if m.startswith("Resumed from step")]
    assert len(resumed) == 1, messages[:10]
    resumed_from = int(resumed[0].split()[3].rstrip(":,."))
    assert 20 <= resumed_from < STEPS and resumed_from % 20 == 0, resumed  # a checkpoint's step, from S3
    mlflow = tracking_client(app.settings())
    experiment = mlflow.get_experiment_by_name(experiment_name("acme"))
    assert experiment.artifact_location == "s3://reelforge/mlflow/acme"
    runs = mlflow.search_runs([experiment.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"  # one run, continued by the second driver
    assert max(m.step for m in mlflow.get_metric_history(runs[0].info.run_id, "train/loss")) == STEPS
    assert list(bucket.objects.filter(Prefix=f"mlflow/acme/{runs[0].info.run_id}/artifacts/adapter"))

    # Served by the generator on node B; downloaded through the ingress on node A.
    video = client.videos.create(prompt=PROMPT, model=done.fine_tuned_model)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", headers={"Authorization": f"Bearer {key}"}) as http:
        wait_for_condition(
            lambda: http.get(f"/videos/{video.id}").json()["status"] in ("completed", "failed"),
            timeout=300,
            retry_interval_ms=250,
        )
        assert http.get(f"/videos/{video.id}").json()["status"] == "completed"
        assert http.get(f"/videos/{video.id}/content").content[4:8] == b"ftyp"
    from ray.util.state import list_actors

    alive = [a for a in list_actors(limit=1000, detail=True) if a.state == "ALIVE"]
    generators = {a.node_id for a in alive if "generator-reelforge-tiny" in (a.class_name or "")}
    ingresses = {a.node_id for a in alive if "VideoAPI" in (a.class_name or "")}
    assert generators == {nodes["node-b"]} and ingresses == {nodes["node-a"]}
