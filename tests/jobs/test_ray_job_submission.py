"""`reelforge finetune --address`: the same job submitted to a running cluster's Ray Jobs API and followed.

The cluster is a second, separate head node (`ray.cluster_utils.Cluster`) with its dashboard and
Jobs API on loopback; the job runs `python -m reelforge finetune` there. The node keeps Ray's own
node address: Ray's dashboard agent resolves 127.0.0.1 to the machine's address and could not reach
a GCS bound to loopback only.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

from reelforge.jobs.run_tracking import tracking_client
from reelforge.models.tiny.brand_looks import BrandLook
from reelforge.models.tiny.footage import write_footage
from reelforge.settings import Settings
from tests.harness import run_cli, start_test_ray

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def jobs_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from ray.cluster_utils import Cluster

    home = tmp_path / "cluster-home"
    # The job's shell finds `python` on PATH (this venv's) and keeps its state in the test's home.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("REELFORGE_HOME", str(home))
    import ray

    # A head node created in a process that is connected to another cluster never gets its job
    # agent registered; disconnect (this stops the shared local test cluster) and restore it after.
    was_connected = ray.is_initialized()
    if was_connected:
        ray.shutdown()
    port = _free_port()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 4,
            "include_dashboard": True,
            "dashboard_host": "127.0.0.1",
            "dashboard_port": port,
            "object_store_memory": 300 * 1024 * 1024,
        },
    )
    try:
        yield f"http://127.0.0.1:{port}", home
    finally:
        cluster.shutdown()
        if was_connected:
            start_test_ray(tmp_path / "ray-home")


@pytest.mark.own_cluster
def test_submitted_finetune_runs_on_the_cluster_and_is_followed(jobs_cluster, tmp_path: Path, monkeypatch, capsys):
    address, home = jobs_cluster
    footage = tmp_path / "footage"
    write_footage(footage, count=3, seed=4, brand=BrandLook("corner-block", "lime"))
    args = ["finetune", "--tenant", "acme", "--data", str(footage), "--address", address]
    for setting in (
        "steps=2",
        "workers=1",
        "batch_per_worker=1",
        "world_eval_prompts=0",
        "validation_videos=0",
        "holdout_fraction=0",
    ):
        args += ["--set", setting]
    code, _, err = run_cli(args, monkeypatch, capsys)
    assert code == 0, err
    flat = " ".join(err.split())
    assert "submitted Ray Job" in flat and "SUCCEEDED" in flat
    assert "registered acme.brand.reelforge-tiny version 1" in flat  # the job's own output, streamed back
    submission_id = flat.split("submitted Ray Job ")[1].split()[0]
    code, out, _ = run_cli(["finetune-status", submission_id, "--address", address], monkeypatch, capsys)
    assert code == 0 and json.loads(out)["status"] == "SUCCEEDED"
    client = tracking_client(Settings(home=home))
    runs = client.search_runs([client.get_experiment_by_name("reelforge/acme").experiment_id])
    assert [r.info.status for r in runs] == ["FINISHED"]


def test_unreachable_address_is_a_clear_error(monkeypatch, capsys, tmp_path: Path):
    port = _free_port()  # nothing listens here
    args = ["finetune", "--tenant", "acme", "--data", str(tmp_path), "--address", f"http://127.0.0.1:{port}"]
    code, _, err = run_cli(args, monkeypatch, capsys)
    assert code == 2 and f"cannot reach the Ray Jobs API at http://127.0.0.1:{port}" in " ".join(err.split())
