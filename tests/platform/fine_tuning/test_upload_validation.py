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


def test_the_api_answers_other_requests_while_a_validation_is_pending(ray_cluster, tmp_path):
    """The ingress awaits the validation task without blocking: while one upload's validation cannot
    even be scheduled, /healthz and another tenant's reads are answered."""
    import threading

    from fastapi.testclient import TestClient

    write_footage(tmp_path / "footage", count=1, seed=6)
    archive = zip_folder(tmp_path / "footage")
    clients = ApiClients(tmp_path / "home", fine_tuning={"validation_timeout_s": 8, "validation_memory_mb": 1 << 20})
    video_id = clients.globex.post("/v1/videos", json={"prompt": "a red circle"}).json()["id"]
    with TestClient(clients.app) as shared:  # one event loop for every request below
        outcome: dict = {}

        def upload_in_background() -> None:
            outcome["response"] = shared.post(
                "/v1/files",
                data={"purpose": "fine-tune"},
                files={"file": ("look.zip", archive)},
                headers=clients.acme.headers,
            )

        uploader = threading.Thread(target=upload_in_background)
        uploader.start()
        wait_for_condition(lambda: len(clients.services.files.files.list("acme", None, None, 10, "desc")[0]) == 1)
        answered = [
            shared.get("/healthz").status_code,
            shared.get(f"/v1/videos/{video_id}", headers=clients.globex.headers).status_code,
        ]
        still_validating = uploader.is_alive()
        uploader.join(60)
    assert answered == [200, 200] and still_validating
    assert outcome["response"].json()["status"] == "error"  # and the stuck validation ended with a reason
