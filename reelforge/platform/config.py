"""`ServeAppConfig`: every setting of the serving application, with its defaults, in one place.

It is the `args` of the Serve application (`reelforge.platform.serving.app_builder:build_app`), so the same
YAML runs under `reelforge serve --config serve.yaml` and `serve deploy serve.yaml` on a cluster.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from reelforge.errors import UserInputError
from reelforge.jobs.ingest import TENANT_PATTERN
from reelforge.platform.serving.moderation import ModerationPolicy
from reelforge.platform.stores.video_jobs import RetryPolicy
from reelforge.provenance.config import ProvenanceSection
from reelforge.safety.output_review import OutputReviewSection
from reelforge.settings import Settings


class ServeConfigError(UserInputError):
    """The serve config file or one of its values is not usable."""

    code = "invalid_serve_config"


def custom_resources(field: str, value: dict[str, float]) -> dict[str, float]:
    """`value` when it names only custom Ray resources (node labels), each a positive amount."""
    for name, amount in value.items():
        if name in ("CPU", "GPU", "memory", "object_store_memory") or not name:
            raise ValueError(f"{field} takes custom resources only, not {name!r}")
        if not 0 < amount <= 1_000_000:
            raise ValueError(f"{field}[{name!r}] must be > 0, got {amount}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class AutoscalingSection(_Strict):
    """Ray Serve autoscaling bounds of one generator deployment."""

    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1)
    initial_replicas: int | None = Field(None, ge=0)
    # One generation at a time is what a replica does well; more waiting asks for another replica.
    target_ongoing_requests: float = Field(1.0, gt=0)
    upscale_delay_s: float = Field(10.0, ge=0)
    downscale_delay_s: float = Field(300.0, ge=0)
    look_back_period_s: float = Field(10.0, gt=0)
    metrics_interval_s: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingSection:
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas {self.max_replicas} is below min_replicas {self.min_replicas}")
        return self

    def to_ray(self) -> dict:
        """The `autoscaling_config` dict Serve takes."""
        return self.model_dump(exclude_none=True)


class GeneratorConfig(_Strict):
    """One generator deployment: a base model and how its replicas are sized and scaled."""

    model: str = "reelforge-tiny"
    model_path: str | None = None
    num_gpus: float | None = None  # None: one GPU per replica when the cluster has GPUs, else none
    num_cpus: float = Field(1.0, ge=0)
    # Custom Ray resources per replica, e.g. {"serve-node": 0.01} to keep replicas on the nodes that
    # advertise it (a cluster's serving node type).
    resources: dict[str, float] = Field(default_factory=dict)
    # Small on purpose: a replica runs one generation at a time, a second one waits (and its
    # adapter can load meanwhile); the rest wait in the job store, where the autoscaler sees them.
    max_ongoing_requests: int = Field(2, ge=1)
    adapter_cache_size: int = Field(16, ge=1)  # LoRA adapters kept per replica (LRU); a LoRA is small next to its base
    # Longer than any generation, so a downscaled replica finishes the video it is making.
    graceful_shutdown_timeout_s: float = Field(900.0, ge=0)
    autoscaling: AutoscalingSection = AutoscalingSection()

    @model_validator(mode="after")
    def _cache_holds_inflight(self) -> GeneratorConfig:
        # Every request a replica holds keeps its adapter loaded; evicting one mid-request would break it.
        if self.adapter_cache_size < self.max_ongoing_requests:
            raise ValueError(
                f"adapter_cache_size {self.adapter_cache_size} must be at least max_ongoing_requests {self.max_ongoing_requests}"
            )
        return self

    @property
    def base_model(self) -> str:
        """The id clients send for the base model (a directory's name for a path)."""
        return Path(self.model).name


class DedicatedTenantConfig(_Strict):
    """A tenant on a dedicated plan: its own generator deployment with its own bounds."""

    tenant: str
    model: str | None = None  # base model it uses; default: the first generator's
    autoscaling: AutoscalingSection = AutoscalingSection()

    @model_validator(mode="after")
    def _tenant_name(self) -> DedicatedTenantConfig:
        if not TENANT_PATTERN.match(self.tenant):
            raise ValueError(f"tenant {self.tenant!r} is not a valid tenant name")
        return self


class QuotaConfig(_Strict):
    """Default per-tenant quotas; `reelforge tenants create --rpm/--concurrency` overrides them."""

    requests_per_minute: int = Field(60, ge=1)
    concurrent_jobs: int = Field(8, ge=1)


class ModerationSection(_Strict):
    """The operator's moderation policy for every tenant, and each tenant's additions.

    Both add to the platform's safety rules (`moderation.SAFETY_PATTERNS`), which always apply.
    """

    default: ModerationPolicy = ModerationPolicy()
    tenants: dict[str, ModerationPolicy] = Field(default_factory=dict)

    def policies_for(self, tenant: str) -> list[ModerationPolicy]:
        """The policies a tenant's prompts pass, in order: the default, then the tenant's own."""
        own = self.tenants.get(tenant)
        return [self.default] if own is None else [self.default, own]


class TrainingPolicy(_Strict):
    """What one tenant may do with `/v1/fine_tuning/jobs` and `/v1/files`."""

    concurrent_jobs: int = Field(1, ge=1)  # validating, queued or running at once
    max_steps: int = Field(2000, ge=1)  # optimizer steps of one job, however they are asked for
    max_upload_bytes: int = Field(2 << 30, ge=1024)  # one footage archive (the server-wide cap applies too)
    auto_promote: bool = False  # a succeeded job's version becomes `production` at once
    # Every training video must have a declared licence and consent (metadata table or upload fields).
    require_rights: bool = False
    # A training video that shows people's faces needs a declared consent (the real-person safeguard).
    faces_need_consent: bool = True


class FineTuningSection(_Strict):
    """How API fine-tuning jobs run: as Ray Jobs on the cluster, with operator defaults and tenant policies."""

    # Every job starts from these FineTuneConfig keys (dotted, as `reelforge finetune --set` takes);
    # a tenant's hyperparameters are applied over them. Checked when the config loads.
    job_defaults: dict[str, Any] = Field(default_factory=dict)
    default: TrainingPolicy = TrainingPolicy()
    tenants: dict[str, TrainingPolicy] = Field(default_factory=dict)
    jobs_api_url: str | None = None  # the Ray Jobs API; default: the dashboard of the cluster Serve runs on
    python: str | None = None  # interpreter the Ray Job runs; default: the ingress's own
    poll_interval_s: float = Field(2.0, gt=0)  # how often the ingress follows submitted jobs
    # Custom Ray resources each job's driver asks for, e.g. {"train-node": 0.001}: the node it runs on
    # downloads and ingests the footage, so keep it off a small head. Empty: anywhere (usually the head).
    driver_resources: dict[str, float] = Field(default_factory=dict)
    # Jobs running on the cluster at once, all tenants together; later ones wait their turn.
    # Each job's ingest and workers need CPUs (and GPUs): too many at once starve each other.
    max_running_jobs: int = Field(1, ge=1)
    # A driver that dies unsettled (killed, its node lost) is resubmitted and resumes from its last checkpoint.
    max_driver_restarts: int = Field(2, ge=0, le=10)
    job_timeout_s: float = Field(86_400.0, gt=0)  # a job running longer is stopped and failed
    # Upload validation runs as a Ray task with this reservation, never in the ingress process.
    validation_num_cpus: float = Field(1.0, gt=0)
    validation_memory_mb: int = Field(2048, ge=256)
    validation_timeout_s: float = Field(1800.0, gt=0)  # a validation not finished by then (or never scheduled) fails
    validation_max_attempts: int = Field(3, ge=1, le=20)  # validators that died with their ingress, in all

    @field_validator("driver_resources")
    @classmethod
    def _custom_resources(cls, value: dict[str, float]) -> dict[str, float]:
        return custom_resources("driver_resources", value)

    @field_validator("job_defaults")
    @classmethod
    def _known_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        from reelforge.jobs.finetune_config import (
            FineTuneConfigError,
            build_config,
            with_keys,
        )

        try:
            build_config(with_keys({"tenant": "validation", "data": "."}, value))
        except FineTuneConfigError as exc:
            raise ValueError(exc.message) from None
        return value

    def policy_for(self, tenant: str) -> TrainingPolicy:
        return self.tenants.get(tenant, self.default)


class ServeAppConfig(_Strict):
    """The serving application: stores, generators, dedicated tenants, quotas and job handling."""

    home: str | None = None  # default: REELFORGE_HOME
    database_url: str | None = None  # default: SQLite under the home
    storage_url: str | None = None  # default: <home>/blobs
    mlflow_tracking_uri: str | None = None  # default: the home's MLflow store
    train_storage_url: str | None = None  # default: REELFORGE_TRAIN_STORAGE, else <home>/ray-results
    mlflow_artifact_url: str | None = None  # default: REELFORGE_MLFLOW_ARTIFACTS, else <home>/mlartifacts
    shared_filesystem: bool | None = None  # default: REELFORGE_SHARED_FILESYSTEM
    generators: list[GeneratorConfig] = Field(default_factory=lambda: [GeneratorConfig()], min_length=1)
    dedicated: list[DedicatedTenantConfig] = Field(default_factory=list)
    quotas: QuotaConfig = QuotaConfig()
    moderation: ModerationSection = ModerationSection()
    fine_tuning: FineTuningSection = FineTuningSection()
    provenance: ProvenanceSection = ProvenanceSection()
    review: OutputReviewSection = OutputReviewSection()  # generated videos that show faces
    ingress_replicas: int = Field(1, ge=1)
    # Custom Ray resources each ingress replica asks for, e.g. {"cpu-node": 0.01}: keep it off GPU nodes.
    ingress_resources: dict[str, float] = Field(default_factory=dict)
    # Requests one ingress replica handles at once (its work is I/O: the database, handles, storage),
    # and how many may wait for it before Serve answers 503: set on purpose, not Serve's default of 5.
    ingress_max_ongoing_requests: int = Field(200, ge=1)
    ingress_max_queued_requests: int = Field(1000, ge=1)
    video_ttl_s: int = Field(24 * 3600, ge=60)  # completed videos are deleted after this
    job_lease_s: float = Field(120.0, gt=0)  # a job whose generator stays silent this long is retried
    max_attempts: int = Field(3, ge=1, le=100)  # claims of one job before it fails
    # A keyed create renews its hold on its Idempotency-Key while it runs; a key left unrenewed this
    # long belongs to a request whose server died, and the client's retry takes it over.
    idempotency_lease_s: float = Field(10.0, ge=1, le=3600)
    retry_backoff_s: float = Field(2.0, ge=0, le=3600)  # wait before the 2nd attempt; doubles after each
    retry_backoff_max_s: float = Field(60.0, ge=0, le=24 * 3600)
    max_request_bytes: int = Field(1 << 20, ge=1024)  # JSON and form bodies of /v1/videos
    max_reference_bytes: int = Field(20 << 20, ge=1024)  # one input_reference image (image-to-video)
    max_upload_bytes: int = Field(2 << 30, ge=1024)  # one /v1/files upload (a footage archive)
    poll_after_ms: int = Field(1000, ge=50)  # `openai-poll-after-ms` on in-flight videos
    dispatch_interval_s: float = Field(0.5, gt=0)
    adapter_resolve_ttl_s: float = Field(10.0, ge=0)  # how long the ingress trusts a registry lookup
    auth_cache_s: float = Field(5.0, ge=0)  # how long a valid key is trusted (a revoked key works this long at most)

    @field_validator("ingress_resources")
    @classmethod
    def _ingress_resources(cls, value: dict[str, float]) -> dict[str, float]:
        return custom_resources("ingress_resources", value)

    @model_validator(mode="after")
    def _consistent(self) -> ServeAppConfig:
        names = [g.base_model for g in self.generators]
        if len(set(names)) != len(names):
            raise ValueError(f"two generators serve the same model: {names}")
        tenants = [d.tenant for d in self.dedicated]
        if len(set(tenants)) != len(tenants):
            raise ValueError(f"a tenant is dedicated twice: {tenants}")
        for d in self.dedicated:
            if d.model is not None and d.model not in names:
                raise ValueError(
                    f"dedicated tenant {d.tenant!r} uses model {d.model!r}, which no generator serves ({names})"
                )
        return self

    def retry_policy(self) -> RetryPolicy:
        """How video jobs are retried."""
        return RetryPolicy(self.max_attempts, self.retry_backoff_s, self.retry_backoff_max_s)

    def settings(self) -> Settings:
        """The Settings every replica uses: explicit values here, else the environment's."""
        env = Settings.from_env()
        return Settings(
            home=Path(self.home).expanduser() if self.home else env.home,
            mlflow_tracking_uri=self.mlflow_tracking_uri or env.mlflow_tracking_uri,
            database_url=self.database_url or env.database_url,
            storage_url=self.storage_url or env.storage_url,
            ray_address=env.ray_address,
            train_storage_url=self.train_storage_url or env.train_storage_url,
            mlflow_artifact_url=self.mlflow_artifact_url or env.mlflow_artifact_url,
            shared_filesystem=env.shared_filesystem if self.shared_filesystem is None else self.shared_filesystem,
            train_node_gpus=env.train_node_gpus,
            train_node_resource=env.train_node_resource,
            model_paths=env.model_paths,
        )

    def pinned(self) -> ServeAppConfig:
        """A copy with the stores resolved, so replicas on other processes and nodes agree on them."""
        s = self.settings()
        return self.model_copy(
            update={
                "home": str(s.home),
                "database_url": s.resolved_database_url,
                "storage_url": s.resolved_storage_url,
                "mlflow_tracking_uri": s.resolved_mlflow_tracking_uri,
                "train_storage_url": s.resolved_train_storage_url,
                "mlflow_artifact_url": s.resolved_mlflow_artifact_url,
                "shared_filesystem": s.shared_filesystem,
            }
        )

    def generator_for(self, base_model: str) -> GeneratorConfig | None:
        return next((g for g in self.generators if g.base_model == base_model), None)

    def dedicated_for(self, tenant: str) -> DedicatedTenantConfig | None:
        return next((d for d in self.dedicated if d.tenant == tenant), None)


def deployment_name(base_model: str, tenant: str | None = None) -> str:
    """`generator-reelforge-tiny`, or `generator-reelforge-tiny-acme` for a dedicated tenant."""
    slug = re.sub(r"[^a-zA-Z0-9-]+", "-", base_model).strip("-").lower()
    return f"generator-{slug}" + (f"-{tenant}" if tenant else "")


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "config"
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def parse_serve_config(data: dict) -> ServeAppConfig:
    """Validate app args; errors name the key."""
    try:
        return ServeAppConfig.model_validate(data or {})
    except ValidationError as exc:
        raise ServeConfigError(f"serve config: {_describe(exc)}") from None


def read_serve_file(path: Path) -> tuple[ServeAppConfig, dict]:
    """A Serve config file (as `serve deploy` takes) -> our app args and its `http_options`."""
    if not path.is_file():
        raise ServeConfigError(f"serve config {path} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ServeConfigError(f"serve config {path} is not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ServeConfigError(f"serve config {path} must be a mapping")
    http_options = loaded.get("http_options") or {}
    apps = loaded.get("applications")
    if apps is None:  # a bare ServeAppConfig mapping is accepted too
        return parse_serve_config(loaded), http_options
    ours = [a for a in apps if str(a.get("import_path", "")).startswith("reelforge.platform.serving.app_builder")]
    if len(ours) != 1:
        raise ServeConfigError(
            f"serve config {path} must hold one application with import_path reelforge.platform.serving.app_builder:build_app"
        )
    return parse_serve_config(ours[0].get("args") or {}), http_options
