"""MLflow runs of fine-tunes: one experiment per tenant, the run opened by the driver, metrics from rank 0.

Naming (see README, "MLflow"): experiment `reelforge/<tenant>`; run name `<suffix>-<job id>`; tags
`reelforge.tenant`, `reelforge.base_model`, `reelforge.dataset_hash`, `reelforge.job_id`,
`reelforge.fine_tuned_model`. Artifacts of the embedded store live under `<home>/mlartifacts/<tenant>`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from reelforge.settings import Settings

logger = logging.getLogger(__name__)

EXPERIMENT_PREFIX = "reelforge/"
TAG_PREFIX = "reelforge."
MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch


def experiment_name(tenant: str) -> str:
    """The tenant's experiment: every fine-tune of that tenant lands here and is comparable."""
    return f"{EXPERIMENT_PREFIX}{tenant}"


def tracking_client(settings: Settings):
    """An MlflowClient on the configured store (SQLite under the home by default)."""
    from mlflow import MlflowClient

    settings.home.mkdir(parents=True, exist_ok=True)
    uri = settings.resolved_mlflow_tracking_uri
    # An explicit client, never `mlflow.set_tracking_uri`: that writes MLFLOW_TRACKING_URI into the
    # process environment, where the next Settings.from_env() would pick up this store.
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def tenant_experiment_id(client, settings: Settings, tenant: str, create: bool = True) -> str | None:
    """The id of the tenant's experiment, created (artifacts under `mlflow_artifact_url`) when missing."""
    name = experiment_name(tenant)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    if not create:
        return None
    root = settings.resolved_mlflow_artifact_url
    location = f"{root}/{tenant}" if root else None
    return client.create_experiment(name, artifact_location=location, tags={f"{TAG_PREFIX}tenant": tenant})


def flatten_params(config: dict, prefix: str = "") -> dict[str, str]:
    """Nested config -> MLflow params with dotted keys (`lora.rank`)."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten_params(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)[:6000]
    return flat


class RankZeroLogger:
    """Metrics and artifacts of one run, written from training rank 0 through the client API.

    The driver owns the run's lifecycle (create, finish, fail); workers only add to it, so a worker
    that dies and restarts keeps writing into the same run.
    """

    def __init__(self, tracking_uri: str, run_id: str, enabled: bool, buffer_seconds: float = 5.0) -> None:
        self.run_id = run_id
        self.enabled = enabled
        self.buffer_seconds = buffer_seconds
        self._client = None
        self._buffer: list = []  # Metric entities logged with `buffered=True`, not yet written
        self._buffer_started = 0.0
        if enabled:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=tracking_uri)

    def metrics(self, values: dict[str, float], step: int, buffered: bool = False) -> None:
        """Log finite metric values at `step`; `buffered` ones are written together every `buffer_seconds`.

        A write per training step is a database transaction the step waits for (10% of a small
        model's step on 2 cores); buffered metrics keep their own step and timestamp, so the curves
        are the same, only up to `buffer_seconds` later. `flush` writes what is buffered.
        """
        if not self.enabled:
            return
        import time

        from mlflow.entities import Metric

        now = time.time()
        batch = [
            Metric(k, float(v), int(now * 1000), step)
            for k, v in values.items()
            if v is not None and math.isfinite(float(v))
        ]
        if not buffered:
            self._write(batch)
            return
        if not self._buffer:
            self._buffer_started = now
        self._buffer += batch
        if now - self._buffer_started >= self.buffer_seconds:
            self.flush()

    def flush(self) -> None:
        """Write every buffered metric now."""
        batch, self._buffer = self._buffer, []
        self._write(batch)

    def _write(self, batch: list) -> None:
        for i in range(0, len(batch), MAX_METRICS_PER_BATCH):
            self._client.log_batch(self.run_id, metrics=batch[i : i + MAX_METRICS_PER_BATCH], synchronous=True)

    def tag(self, key: str, value: str) -> None:
        """Set a run tag (tags, unlike params, may be set again by a restarted worker)."""
        if self.enabled:
            self._client.set_tag(self.run_id, key, value)

    def artifacts(self, local_dir: Path, artifact_path: str) -> None:
        """Upload a directory's files under `artifact_path`."""
        if self.enabled:
            self._client.log_artifacts(self.run_id, str(local_dir), artifact_path)
