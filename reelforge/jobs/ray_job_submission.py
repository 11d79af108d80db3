"""Submit a fine-tune to a running Ray cluster as a Ray Job and follow it to the end.

The job runs `python -m reelforge finetune ...` on the cluster's head node with the same flags
(minus `--address`), so the cluster's own reelforge install, MLflow store and storage apply.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable

from reelforge.errors import ReelforgeError, UserInputError

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
AGENT_WAIT_S = 60.0


class RayJobFailedError(ReelforgeError):
    """The submitted Ray Job ended FAILED or STOPPED."""

    code = "ray_job_failed"


def _client(address: str):
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UserInputError(f"cannot reach the Ray Jobs API at {address}: {exc}") from exc


def submit_finetune(address: str, finetune_args: list[str], env_vars: dict[str, str] | None = None) -> str:
    """Submit `reelforge finetune FINETUNE_ARGS` and return the Ray submission id."""
    entrypoint = "python -m reelforge finetune " + " ".join(shlex.quote(a) for a in finetune_args)
    client = _client(address)
    deadline = time.monotonic() + AGENT_WAIT_S
    while True:
        try:
            return client.submit_job(entrypoint=entrypoint, runtime_env={"env_vars": env_vars or {}})
        except RuntimeError as exc:
            # A head node that just started answers this until its job agent has registered.
            if "No available agent" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def follow_job(
    address: str, submission_id: str, on_log: Callable[[str], None] | None = None, poll_s: float = 2.0
) -> str:
    """Poll the job until it ends, passing new log text to `on_log`; return the final status."""
    client = _client(address)
    seen = 0
    while True:
        status = str(client.get_job_status(submission_id).value)
        logs = client.get_job_logs(submission_id)
        if on_log and len(logs) > seen:
            on_log(logs[seen:])
            seen = len(logs)
        if status in TERMINAL:
            return status
        time.sleep(poll_s)  # the Jobs API has no blocking wait; polling is its documented use


def job_status(address: str, submission_id: str) -> dict:
    """Status, message and timing of a submitted job."""
    info = _client(address).get_job_info(submission_id)
    return {
        "submission_id": submission_id,
        "status": str(info.status.value),
        "message": info.message,
        "entrypoint": info.entrypoint,
        "start_time": info.start_time,
        "end_time": info.end_time,
    }
