"""Two ingress replicas, each running a dispatcher over one job store: every accepted video runs
exactly once (no job lost, none generated twice)."""

from __future__ import annotations

import pytest
from ray import serve
from ray._common.test_utils import wait_for_condition

from reelforge.platform.stores.audit_log import AuditLog
from reelforge.platform.stores.usage import UsageMeter
from tests.harness import PROMPT, deploy_platform

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_two_ingress_replicas_share_the_store_without_losing_or_duplicating_jobs(serve_port, tmp_path):
    platform = deploy_platform(
        "twoingress",
        serve_port,
        tmp_path / "home",
        ingress_replicas=2,
        dispatch_interval_s=0.1,
        generators=[{"num_cpus": 0.5, "autoscaling": {"min_replicas": 1, "max_replicas": 1}}],
        quotas={"requests_per_minute": 1000, "concurrent_jobs": 100},
    )
    try:
        assert serve.status().applications["twoingress"].deployments["VideoAPI"].replica_states.get("RUNNING") == 2
        _, key = platform.tenants.create("acme")
        with platform.client(key) as http:
            ids = [
                http.post("/videos", json={"prompt": PROMPT, "seconds": "1", "steps": 8, "seed": i}).json()["id"]
                for i in range(16)
            ]

            def all_done() -> bool:
                return all(platform.jobs.peek(v).status in ("completed", "failed") for v in ids)

            wait_for_condition(all_done, timeout=240, retry_interval_ms=250)
        jobs = [platform.jobs.peek(v) for v in ids]
        assert all(j.status == "completed" and j.attempts == 1 for j in jobs)  # each started exactly once
        completed = [
            e
            for e in AuditLog(platform.config.database_url).events("acme", limit=1000)[0]
            if e.action == "video.completed"
        ]
        assert sorted(e.subject for e in completed) == sorted(ids)  # one completion per job, none twice
        assert UsageMeter(platform.config.database_url).summary("acme")[0].jobs == 16
    finally:
        serve.delete(platform.name)
