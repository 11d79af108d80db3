"""Refusing state that one node keeps to itself, when Ray has more than one node.

On one machine the defaults (SQLite files, blob and checkpoint directories under the home) are
right. On a cluster they split: a generator on another node opens its own empty database and
never finds its job, a video lands on the generator's disk and downloads 404, and Ray Train
fails at checkpoint time without shared storage. So serving and fine-tuning check the settings
against the cluster first, and refuse with every setting to change named:

* `database_url` must be PostgreSQL, not SQLite;
* `mlflow_tracking_uri` must be a tracking server or a database server, not a local file or SQLite;
* `storage_url` (blobs), `train_storage_url` (Ray Train checkpoints) and, on a database store,
  `mlflow_artifact_url` (adapters) must be object storage
  (`s3://...`), or paths on a filesystem every node mounts at the same place, declared with
  `shared_filesystem` (`REELFORGE_SHARED_FILESYSTEM=1`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from reelforge.errors import UserInputError
from reelforge.settings import Settings


class SplitStateError(UserInputError):
    """A multi-node cluster was given state that lives on one node."""


@dataclass(frozen=True)
class LocalState:
    """One setting whose value keeps state on one node, and what to set instead."""

    setting: str
    value: str
    fix: str


def _local_path(url: str) -> bool:
    scheme = urlsplit(url).scheme
    return scheme in ("", "file", "local") or len(scheme) == 1  # a Windows drive letter is a path too


def local_state(settings: Settings) -> list[LocalState]:
    """Every setting that keeps its state on the node that reads it."""
    found = []
    if settings.resolved_database_url.startswith("sqlite"):
        found.append(
            LocalState(
                "database_url (REELFORGE_DATABASE_URL)",
                settings.resolved_database_url,
                "use PostgreSQL, e.g. postgresql+psycopg://reelforge@db-host/reelforge",
            )
        )
    tracking = settings.resolved_mlflow_tracking_uri
    if tracking.startswith("sqlite") or _local_path(tracking):
        found.append(
            LocalState(
                "mlflow_tracking_uri (MLFLOW_TRACKING_URI)",
                tracking,
                "use an MLflow tracking server (http://mlflow-host:5000) or a PostgreSQL backend store",
            )
        )
    if not settings.shared_filesystem:
        shared = "use s3://bucket/prefix, or a path every node mounts and REELFORGE_SHARED_FILESYSTEM=1"
        if _local_path(settings.resolved_storage_url):
            found.append(LocalState("storage_url (REELFORGE_STORAGE_URL)", settings.resolved_storage_url, shared))
        if _local_path(settings.resolved_train_storage_url):
            found.append(
                LocalState("train_storage_url (REELFORGE_TRAIN_STORAGE)", settings.resolved_train_storage_url, shared)
            )
        artifacts = settings.resolved_mlflow_artifact_url
        if artifacts is not None and _local_path(artifacts):
            found.append(LocalState("mlflow_artifact_url (REELFORGE_MLFLOW_ARTIFACTS)", artifacts, shared))
    return found


def refuse_split_state(settings: Settings, nodes: int, what: str) -> None:
    """Raise SplitStateError naming every local setting when `nodes` > 1; nothing on one node."""
    if nodes <= 1:
        return
    problems = local_state(settings)
    if problems:
        listed = "; ".join(f"{p.setting} is {p.value!r}: {p.fix}" for p in problems)
        raise SplitStateError(f"{what} on a {nodes}-node Ray cluster needs state every node shares. Change {listed}")


def alive_ray_nodes() -> int:
    """Nodes of the connected Ray cluster that are up (1 when this process is not connected)."""
    import ray

    if not ray.is_initialized():
        return 1
    return sum(1 for node in ray.nodes() if node.get("Alive"))
