"""`reelforge serve` as a user runs it: the CLI starts its own loopback Ray cluster and Serve app;
stopped with videos in flight and started again (this time with `reelforge up`, stopped with
`reelforge down`), it finishes every accepted video."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from ray._common.test_utils import wait_for_condition

from reelforge.models.video_io import read_video
from reelforge.platform.daemon import is_running
from reelforge.platform.stores.video_jobs import VideoJobStore
from tests.harness import PROMPT, free_port, start_server, stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.cluster, pytest.mark.own_cluster]


def reelforge(args: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reelforge", *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_restart_with_jobs_in_flight_finishes_them_all(tmp_path: Path):
    home = tmp_path / "home"
    config = tmp_path / "serve.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "applications": [
                    {
                        "name": "reelforge",
                        "route_prefix": "/",
                        "import_path": "reelforge.platform.serving.app_builder:build_app",
                        "args": {
                            "home": str(home),
                            "job_lease_s": 3,
                            "dispatch_interval_s": 0.2,
                            "generators": [{"num_cpus": 1, "max_ongoing_requests": 1, "adapter_cache_size": 1}],
                        },
                    }
                ],
            }
        )
    )
    env = {**os.environ, "REELFORGE_HOME": str(home)}
    env.pop("RAY_ADDRESS", None)
    created = reelforge(["tenants", "create", "acme", "--config", str(config), "--json"], env)
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["api_key"]
    listed = reelforge(["tenants", "list", "--config", str(config), "--json"], env)
    assert key not in listed.stdout and json.loads(listed.stdout)[0]["name"] == "acme"

    port, log = free_port(), tmp_path / "serve.log"
    server = start_server(config, port, env, log)
    jobs = VideoJobStore(f"sqlite:///{home / 'reelforge.db'}")
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", headers=headers, timeout=60) as http:
        # About 25 s of work on one generator: SIGTERM lets Serve drain for a while, and with less
        # queued (4 x 120 steps) every job could finish inside the drain, leaving nothing in flight.
        ids = [http.post("/videos", json={"prompt": PROMPT, "steps": 200, "seed": i}).json()["id"] for i in range(8)]
        wait_for_condition(lambda: jobs.peek(ids[0]).status == "in_progress", timeout=120, retry_interval_ms=100)
    assert stop_server(server) == 0
    interrupted = [v for v in ids if jobs.peek(v).status != "completed"]
    assert interrupted, "every job finished before the stop; nothing was in flight"
    assert "resume when the server starts again" in log.read_text()

    up = reelforge(["up", "--config", str(config), "--port", str(port)], env, timeout=400)
    assert up.returncode == 0 and "reelforge is up" in up.stderr, up.stderr
    pid = int((home / "run" / "serve.pid").read_text())
    try:
        again = reelforge(["up", "--config", str(config), "--port", str(port)], env)
        assert again.returncode == 2 and f"already running (pid {pid})" in again.stderr
        wait_for_condition(
            lambda: all(jobs.peek(v).status == "completed" for v in ids), timeout=240, retry_interval_ms=250
        )
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", headers=headers, timeout=60) as http:
            for video_id in ids:
                path = tmp_path / f"{video_id}.mp4"
                path.write_bytes(http.get(f"/videos/{video_id}/content").content)
                assert read_video(path).num_frames == 17
    finally:
        down = reelforge(["down", "--config", str(config)], env, timeout=200)
    assert down.returncode == 0 and f"stopped reelforge (pid {pid})" in down.stderr, down.stderr
    assert not (home / "run" / "serve.pid").exists()
    assert not is_running(pid)
    assert "not running" in reelforge(["down", "--config", str(config)], env).stderr
    assert any(jobs.peek(v).attempts >= 2 for v in interrupted)  # started, lost with the server, run again
