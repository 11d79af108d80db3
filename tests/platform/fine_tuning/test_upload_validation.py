"""Upload validation runs in the background, in a Ray task of its own on a real local cluster, not in
the API process: the upload answers `uploaded` at once, a good archive becomes `processed`, and a
validation that cannot finish leaves the file `error` with the reason while the API keeps answering."""

from __future__ import annotations

import pytest
from ray._common.test_utils import wait_for_condition

from reelforge.models.tiny.footage import write_footage
from tests.harness import ApiClients, settled_file, zip_folder

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
    assert first.status_code == 200 and first.json()["status"] == "uploaded", first.text
    assert settled_file(clients.acme, f"/v1/files/{first.json()['id']}")["status"] == "processed"
    # The inventory ran as a task, not in this process (task events reach the state API within seconds).
    wait_for_condition(lambda: validation_tasks() == before + 1, timeout=30, retry_interval_ms=250)

    stuck = ApiClients(
        tmp_path / "home2", fine_tuning={"validation_timeout_s": 0.001, "validation_memory_mb": 1 << 20}
    )  # asks for a terabyte: never scheduled
    refused = upload(stuck, archive)
    assert refused.status_code == 200, refused.text
    settled = settled_file(stuck.acme, f"/v1/files/{refused.json()['id']}")
    assert settled["status"] == "error" and "took longer than 0.001 s" in settled["status_details"]
    assert stuck.acme.get("/healthz").status_code == 200


def test_the_upload_answers_at_once_and_the_api_stays_up_while_its_validation_is_pending(ray_cluster, tmp_path):
    """The upload is `uploaded` before its validation task can even be scheduled; meanwhile /healthz
    and another tenant's reads are answered, and the stuck validation ends with a reason."""
    write_footage(tmp_path / "footage", count=1, seed=6)
    archive = zip_folder(tmp_path / "footage")
    clients = ApiClients(tmp_path / "home", fine_tuning={"validation_timeout_s": 8, "validation_memory_mb": 1 << 20})
    video_id = clients.globex.post("/v1/videos", json={"prompt": "a red circle"}).json()["id"]
    response = upload(clients, archive)
    assert response.status_code == 200 and response.json()["status"] == "uploaded", response.text
    file_url = f"/v1/files/{response.json()['id']}"
    answered = [
        clients.acme.get("/healthz").status_code,
        clients.globex.get(f"/v1/videos/{video_id}").status_code,
        clients.acme.get(file_url).json()["status"],
    ]
    assert answered == [200, 200, "uploaded"]
    settled = settled_file(clients.acme, file_url, timeout=60)
    assert settled["status"] == "error" and "took longer than 8 s" in settled["status_details"]
