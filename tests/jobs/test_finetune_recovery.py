"""Fault tolerance: SIGKILL one training worker mid-run; Ray Train restarts the group from the last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest
from ray._common.test_utils import wait_for_condition

from reelforge.jobs.finetune import run_finetune
from reelforge.jobs.finetune_config import build_config
from reelforge.jobs.run_tracking import tracking_client
from reelforge.models.tiny.brand_looks import BrandLook
from reelforge.models.tiny.footage import write_footage
from reelforge.settings import Settings

pytestmark = pytest.mark.slow

CHECKPOINT_EVERY = 10
TOTAL_STEPS = 80


def _heartbeat(status_dir: Path, rank: int) -> dict | None:
    path = status_dir / f"rank-{rank}.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def test_killed_worker_resumes_from_its_last_checkpoint(ray_cluster, tmp_path: Path):
    footage = tmp_path / "footage"
    write_footage(footage, count=4, seed=2, brand=BrandLook("border", "teal"))
    settings = Settings(home=tmp_path / "home")
    # Batches of 8 make steps slow enough that the controller (polling every 2 s) registers each
    # checkpoint well before the next one is due.
    config = build_config(
        {"tenant": "acme", "data": str(footage)},
        [
            f"steps={TOTAL_STEPS}",
            f"checkpoint_every={CHECKPOINT_EVERY}",
            "eval_every=1000",
            "batch_per_worker=8",
            "world_eval_prompts=0",
            "validation_videos=0",
            "holdout_fraction=0",
            "max_failures=2",
        ],
    )
    job_id = "ft-acme-recovery-test"
    status_dir = settings.home / "finetune" / job_id / "workers"
    checkpoints = settings.home / "ray-results" / job_id
    outcome: dict = {}

    def train() -> None:
        try:
            outcome["result"] = run_finetune(config, settings, job_id=job_id)
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=train)
    thread.start()

    def registered_steps() -> list[int]:
        # The controller writes this snapshot once it has registered a reported checkpoint; only
        # registered checkpoints are offered to a restarted worker group.
        try:
            snapshot = json.loads((checkpoints / "checkpoint_manager_snapshot.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return []
        return [r["metrics"]["step"] for r in snapshot["checkpoint_results"]]

    registered_at_kill: list[int] = []

    def mid_run_after_a_registered_checkpoint() -> bool:
        # Registration lags the report by up to a controller poll, so the worker may already be past
        # the next checkpoint; any point after a registered one and well before the end will do.
        beat, steps = _heartbeat(status_dir, 1), registered_steps()
        if not steps or beat is None or not max(steps) < beat["step"] < TOTAL_STEPS - CHECKPOINT_EVERY:
            return False
        registered_at_kill.append(max(steps))
        return True

    wait_for_condition(mid_run_after_a_registered_checkpoint, timeout=300, retry_interval_ms=20)
    victim = _heartbeat(status_dir, 1)
    os.kill(victim["pid"], signal.SIGKILL)
    thread.join(timeout=600)
    assert not thread.is_alive() and "error" not in outcome, outcome.get("error")

    result = outcome["result"]
    resumed_from = result.metrics["resumed_from_step"]
    assert result.metrics["step"] == TOTAL_STEPS
    assert resumed_from % CHECKPOINT_EVERY == 0 and resumed_from >= registered_at_kill[-1], (victim, result.metrics)
    # Lost work is bounded by how far the killed worker was past the last registered checkpoint.
    assert 0 <= victim["step"] - resumed_from <= victim["step"] - registered_at_kill[-1]
    after = _heartbeat(status_dir, 1)
    assert after["pid"] != victim["pid"] and after["step"] == TOTAL_STEPS  # a new process finished the run
    history = tracking_client(settings).get_metric_history(result.run_id, "train/resumed_from_step")
    assert [m.value for m in history] == [resumed_from]
    assert tracking_client(settings).get_run(result.run_id).info.status == "FINISHED"
