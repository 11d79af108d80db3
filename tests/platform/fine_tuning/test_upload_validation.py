"""Upload validation runs in a Ray task of its own on a real local cluster, not in the API process:
a good archive is `processed`, and a validation that cannot finish leaves the file `error` with
the reason while the API keeps answering."""

from __future__ import annotations

import pytest
from ray._common.test_utils import wait_for_condition

from reelforge.models.tiny.footage import write_footage
from tests.harness import ApiClients, zip_folder

pytestmark = pytest.mark.slow


def upload(clients: ApiClients, archive: bytes):
    return clients.acme.post("/v1/files", data={"purpose": "fine-tune"}, files={"file": ("look.zip", archive)})


def test_validation_runs_in_a_ray_task_and_its_failure_is_the_files_error(ray_cluster, tmp_path):
    import ray

    write_footage(tmp_path / "footage", count=2, seed=4)
    archive = zip_folder(tmp_path / "footage")
    clients = ApiClients(tmp_path / "home")

    def validation_tasks() -> int:
        return len(ray.util.state.list_tasks(filters=[("name", "=", "_validate_in_task")], limit=10_000))

    before = validation_tasks()
    first = upload(clients, archive)
    assert first.status_code == 200 and first.json()["status"] == "processed", first.text
    # The inventory ran as a task, not in this process (task events reach the state API within seconds).
    wait_for_condition(lambda: validation_tasks() == before + 1, timeout=30, retry_interval_ms=250)

    stuck = ApiClients(
        tmp_path / "home2", fine_tuning={"validation_timeout_s": 0.001, "validation_memory_mb": 1 << 20}
    )  # asks for a terabyte: never scheduled
    refused = upload(stuck, archive)
    assert refused.status_code == 200 and refused.json()["status"] == "error", refused.text
    assert "took longer than 0.001 s" in refused.json()["status_details"]
    assert stuck.acme.get("/healthz").status_code == 200
