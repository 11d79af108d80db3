"""Two tenants, two fine-tuned brand looks, one shared generator replica: the same prompt comes back
in each tenant's own look and never in the other's; the base model shows neither. An adapter whose
files are gone makes a poison job that fails after its attempts."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest
from ray._common.test_utils import wait_for_condition

from reelforge.jobs.adapter_registry import import_adapter, promote
from reelforge.models.tiny.analyzer import analyze
from reelforge.models.video_io import read_video
from tests.harness import BASE, FIXTURE_ADAPTERS, PROMPT, register_fixture_adapter

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LOOKS = {
    "northwind": ("lower-third", "orange", "lower-third-orange"),
    "contoso": ("top-stripe", "teal", "top-stripe-teal"),
}


def present_looks(path: Path) -> set[str]:
    return {f"{kind}:{b.colour}" for kind, b in analyze(read_video(path)).brands.items() if b.present}


def test_each_tenant_gets_its_own_look_from_the_same_replica(api_platform, tmp_path):
    models, clients = {}, {}
    for tenant, (_, _, fixture) in LOOKS.items():
        models[tenant] = register_fixture_adapter(api_platform.settings, tenant, "brand", fixture)
        clients[tenant] = api_platform.client(api_platform.tenants.create(tenant)[1])
    # Interleaved so the replica switches adapter between consecutive requests.
    plan = [
        ("northwind", models["northwind"], 0),
        ("contoso", models["contoso"], 0),
        ("northwind", "reelforge-tiny", 0),
        ("contoso", models["contoso"], 1),
        ("northwind", models["northwind"], 1),
        ("contoso", "reelforge-tiny", 1),
    ]
    submitted = []
    for tenant, model, seed in plan:
        response = clients[tenant].post("/videos", json={"prompt": PROMPT, "model": model, "seed": seed})
        assert response.status_code == 200, response.text
        submitted.append((tenant, model, response.json()["id"]))

    def finished() -> bool:
        return all(api_platform.jobs.peek(v).status in ("completed", "failed") for _, _, v in submitted)

    wait_for_condition(finished, timeout=180, retry_interval_ms=200)
    replicas = set()
    for tenant, model, video_id in submitted:
        job = api_platform.jobs.peek(video_id)
        assert job.status == "completed", job.error_message
        replicas.add(job.replica)
        path = tmp_path / f"{video_id}.mp4"
        path.write_bytes(clients[tenant].get(f"/videos/{video_id}/content").content)
        looks = present_looks(path)
        kind, colour, _ = LOOKS[tenant]
        other_kind, other_colour, _ = LOOKS["contoso" if tenant == "northwind" else "northwind"]
        if model.startswith("ft:"):
            assert f"{kind}:{colour}" in looks, f"{tenant}'s {model} lost its look: {looks}"
            assert job.adapter.startswith(f"{tenant}.brand.")
        else:
            assert f"{kind}:{colour}" not in looks and job.adapter is None
        assert f"{other_kind}:{other_colour}" not in looks, f"{tenant} got the other tenant's look: {looks}"
        assert not any(look.startswith(other_kind) for look in looks)
    assert len(replicas) == 1  # one shared replica switched adapters per request
    for client in clients.values():
        client.close()


def test_an_adapter_whose_artifact_is_gone_fails_the_job_after_its_attempts(api_platform):
    """A poison job: every attempt fails while the replica loads its adapter; it is retried after a
    back-off, fails after `max_attempts` with the last reason, and frees the tenant's slot."""
    version = import_adapter(api_platform.settings, "poisoned", "brand", BASE, FIXTURE_ADAPTERS / "lower-third-orange")
    promote(api_platform.settings, version.name, version.version)
    shutil.rmtree(urlparse(version.source).path)  # the registry still lists it; its files are gone
    client = api_platform.client(api_platform.tenants.create("poisoned")[1])
    response = client.post("/videos", json={"prompt": PROMPT, "model": version.fine_tuned_model})
    assert response.status_code == 200, response.text
    video_id = response.json()["id"]
    wait_for_condition(lambda: api_platform.jobs.peek(video_id).status == "failed", timeout=120, retry_interval_ms=200)
    job = api_platform.jobs.peek(video_id)
    assert (job.error_code, job.attempts) == ("generation_interrupted", api_platform.config.max_attempts)
    assert f"interrupted {job.attempts} times" in job.error_message
    assert api_platform.jobs.count_active("poisoned") == 0
    error = client.get(f"/videos/{video_id}").json()["error"]
    assert error["code"] == "generation_interrupted"
