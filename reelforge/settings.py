"""One `Settings` object: where reelforge keeps its state and finds its services.

Every default lives here. Each field can be set by an environment variable named in
`Settings.from_env`; nothing else in the package reads the environment for these.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _default_home() -> Path:
    return Path(os.environ.get("REELFORGE_HOME", Path.home() / ".reelforge")).expanduser()


MODEL_PATH_ENV_PREFIX = "REELFORGE_MODEL_PATH_"


@dataclass(frozen=True)
class Settings:
    """Locations and service addresses shared by every reelforge command and service."""

    home: Path = field(default_factory=_default_home)
    mlflow_tracking_uri: str | None = None
    database_url: str | None = None
    storage_url: str | None = None
    ray_address: str | None = None
    train_storage_url: str | None = None  # Ray Train's checkpoints: s3://... or a shared path
    # MLflow artifacts (adapters, samples) of runs on a database store: s3://... or a shared path.
    # Behind an MLflow tracking server (http) the server's own artifact store applies instead.
    mlflow_artifact_url: str | None = None
    shared_filesystem: bool = False  # the home and storage paths are mounted on every node at the same place
    # The cluster's declared training shape (`training_placement`): GPUs per train node, and the label
    # resource train nodes carry. Unset: the GPUs up when a job starts decide.
    train_node_gpus: int | None = None
    train_node_resource: str | None = None
    # Local diffusers directories given per preset, keyed by `model_path_env_var(preset)`.
    model_paths: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Ray workers run in their own working directory: a relative home would put their MLflow
        # store and blobs somewhere else than the driver's (a run "not found" mid-fine-tune).
        object.__setattr__(self, "home", Path(self.home).expanduser().absolute())

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Build settings from `REELFORGE_*` (and `MLFLOW_TRACKING_URI`) environment variables."""
        env = os.environ if environ is None else environ
        home = Path(env.get("REELFORGE_HOME", Path.home() / ".reelforge")).expanduser()
        model_paths = {
            key: Path(value).expanduser()
            for key, value in env.items()
            if key.startswith(MODEL_PATH_ENV_PREFIX) and value
        }
        return cls(
            home=home,
            mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
            database_url=env.get("REELFORGE_DATABASE_URL") or None,
            storage_url=env.get("REELFORGE_STORAGE_URL") or None,
            ray_address=env.get("RAY_ADDRESS") or None,
            train_storage_url=env.get("REELFORGE_TRAIN_STORAGE") or None,
            mlflow_artifact_url=env.get("REELFORGE_MLFLOW_ARTIFACTS") or None,
            shared_filesystem=env.get("REELFORGE_SHARED_FILESYSTEM", "").lower() in ("1", "true", "yes"),
            train_node_gpus=_int_or_none(env, "REELFORGE_TRAIN_NODE_GPUS"),
            train_node_resource=env.get("REELFORGE_TRAIN_NODE_RESOURCE") or None,
            model_paths=model_paths,
        )

    def model_path_for(self, preset: str) -> Path | None:
        """The directory the user gave for `preset` through its environment variable, if any."""
        return self.model_paths.get(model_path_env_var(preset))

    @property
    def models_dir(self) -> Path:
        """Where presets are looked for by default: `<home>/models/<preset name>`."""
        return self.home / "models"

    @property
    def resolved_mlflow_tracking_uri(self) -> str:
        """MLflow store: the configured URI, or a SQLite store under the home directory."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def resolved_database_url(self) -> str:
        """Job store: the configured URL, or SQLite under the home directory."""
        return self.database_url or f"sqlite:///{self.home / 'reelforge.db'}"

    @property
    def resolved_storage_url(self) -> str:
        """Blob storage (videos, uploads): the configured fsspec URL, or a local directory."""
        return self.storage_url or str(self.home / "blobs")

    @property
    def resolved_mlflow_artifact_url(self) -> str | None:
        """Where tenant experiments keep artifacts; None behind a tracking server (its store applies)."""
        if self.mlflow_artifact_url:
            return self.mlflow_artifact_url.rstrip("/")
        if self.resolved_mlflow_tracking_uri.startswith(("http://", "https://")):
            return None
        # A database store: MLflow would use ./mlruns of whatever directory the process runs in.
        return (self.home / "mlartifacts").resolve().as_uri()

    @property
    def resolved_train_storage_url(self) -> str:
        """Ray Train's storage (checkpoints, results): the configured URL or path, or a directory under the home."""
        return self.train_storage_url or str((self.home / "ray-results").resolve())


def _int_or_none(env, name: str) -> int | None:
    value = (env.get(name) or "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        from reelforge.errors import UserInputError

        raise UserInputError(f"{name} must be a whole number, got {value!r}") from None


def model_path_env_var(preset: str) -> str:
    """`wan2.1-t2v-1.3b` -> `REELFORGE_MODEL_PATH_WAN2_1_T2V_1_3B`."""
    return MODEL_PATH_ENV_PREFIX + preset.upper().replace(".", "_").replace("-", "_")
