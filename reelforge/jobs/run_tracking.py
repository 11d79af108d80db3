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

    def __init__(self, tracking_uri: str, run_id: str, enabled: bool) -> None:
        self.run_id = run_id
        self.enabled = enabled
        self._client = None
        if enabled:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=tracking_uri)

    def metrics(self, values: dict[str, float], step: int) -> None:
        """Log finite metric values at `step`."""
        if not self.enabled:
            return
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in values.items() if v is not None and math.isfinite(float(v))]
        if batch:
            self._client.log_batch(self.run_id, metrics=batch, synchronous=True)

    def tag(self, key: str, value: str) -> None:
        """Set a run tag (tags, unlike params, may be set again by a restarted worker)."""
        if self.enabled:
            self._client.set_tag(self.run_id, key, value)

    def artifacts(self, local_dir: Path, artifact_path: str) -> None:
        """Upload a directory's files under `artifact_path`."""
        if self.enabled:
            self._client.log_artifacts(self.run_id, str(local_dir), artifact_path)
