"""`reelforge finetune`: the driver of a LoRA fine-tune on Ray Train + DeepSpeed, tracked in MLflow.

    validate config -> resolve model -> data (ingest raw footage, check tenant, split by video)
    -> MLflow run (params, tags, dataset input) -> TorchTrainer (N workers, train_worker.py)
    -> register the adapter (alias `candidate`) -> finish the run

Everything before `TorchTrainer.fit` is a fast check; a bad config, path or dataset never starts
a worker.
"""

from __future__ import annotations

import functools
import logging
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from reelforge.errors import ReelforgeError
from reelforge.jobs.adapter_registry import (
    adapter_sha256,
    register_adapter,
    registered_model_name,
)
from reelforge.jobs.deepspeed_config import resolve_precision
from reelforge.jobs.finetune_config import FineTuneConfig
from reelforge.jobs.run_tracking import (
    TAG_PREFIX,
    flatten_params,
    tenant_experiment_id,
    tracking_client,
)
from reelforge.jobs.train_evaluation import starts_from_images, validation_examples
from reelforge.jobs.train_worker import ADAPTER_DIR, COMFYUI_DIR
from reelforge.jobs.training_data import (
    TrainingData,
    detect_brand,
    prepare_training_data,
)
from reelforge.jobs.training_placement import ClusterShape, plan_training_placement
from reelforge.models.loading import describe_model
from reelforge.models.lora import read_adapter_card
from reelforge.settings import Settings

logger = logging.getLogger(__name__)


class FineTuneFailedError(ReelforgeError):
    """Training started but did not finish (after the allowed worker restarts)."""

    code = "fine_tune_failed"


@dataclass
class FineTuneResult:
    """What a finished fine-tune produced and where to find it."""

    job_id: str
    run_id: str
    registered_model: str
    version: int
    fine_tuned_model: str
    adapter_dir: Path
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0  # the whole job
    device_seconds: float = 0.0  # training wall time x workers: what the job held devices for
    device: str = "cpu"


class FineTuneCancelledError(ReelforgeError):
    """The job was cancelled before its adapter was registered."""

    code = "fine_tune_cancelled"


class FineTuneHooks:
    """Callbacks that follow and gate a fine-tune; the defaults do nothing (the API's job driver overrides them)."""

    def data_ready(self, data: TrainingData, total_steps: int, workers: int, device: str) -> None:
        """The footage is ingested and split; training is about to start."""

    def run_started(self, run_id: str) -> None:
        """The MLflow run exists; its metrics can be followed from now on."""

    def before_register(self) -> None:
        """Last chance to stop (raise FineTuneCancelledError) before a registry version is created."""

    def registered(self, name: str, version: int) -> None:
        """The adapter is registered as `name` version `version`."""


def _earlier_run(client, experiment_id: str, job_id: str) -> str | None:
    """The MLflow run an earlier driver of this job created, if any (unfinished runs only)."""
    from reelforge.jobs.adapter_registry import filter_literal

    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{TAG_PREFIX}job_id` = '{filter_literal(job_id)}'", max_results=5
    )
    unfinished = [r for r in runs if r.info.status != "FINISHED"]
    return unfinished[0].info.run_id if unfinished else None


def new_job_id(tenant: str) -> str:
    """`ft-acme-20261121-083000-1a2b3c`: sortable, unique, names the tenant."""
    return f"ft-{tenant}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def _follow_progress(client, run_id: str, total: int, stop: threading.Event, show: bool) -> None:
    """Show training progress from the run's `train/step` metric (rank 0 logs it every step)."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc="fine-tune", unit="step", disable=not show)
    while not stop.wait(2.0):
        try:
            latest = client.get_run(run_id).data.metrics  # latest value per key: one small query
        except Exception:
            continue
        if "train/step" in latest:
            bar.n = int(latest["train/step"])
            bar.set_postfix(loss=f"{latest.get('train/loss', float('nan')):.4f}")
            bar.refresh()
    bar.close()


def run_finetune(
    config: FineTuneConfig,
    settings: Settings,
    model_path: str | None = None,
    progress: bool = False,
    job_id: str | None = None,
    sweep_id: str | None = None,
    hooks: FineTuneHooks | None = None,
    max_steps: int | None = None,
    validation_data: Path | None = None,
) -> FineTuneResult:
    """Run one fine-tune to completion and register its adapter; raises typed errors on bad input.

    `max_steps` bounds the resolved step count (epochs are only resolved once the clips are known).
    `validation_data` (footage like `config.data`) is held out in place of a split of the training data.
    """
    started = time.perf_counter()
    hooks = hooks or FineTuneHooks()
    model = describe_model(config.model, settings, model_path)
    config.image_conditioning_rate(model.spec.image_input)  # refused here, not in every worker
    from reelforge.jobs.ray_cluster import ensure_ray
    from reelforge.jobs.shared_state import alive_ray_nodes, refuse_split_state

    ensure_ray(settings)  # training needs it anyway; the cluster's shape is checked before any work
    refuse_split_state(settings, alive_ray_nodes(), "a fine-tune")
    if config.brand is not None:
        from reelforge.models.tiny.brand_looks import parse_brand

        parse_brand(config.brand)
    data = prepare_training_data(config, settings, model, str(model.path))  # starts Ray only to ingest raw footage
    if validation_data is not None:
        held_out = config.model_copy(update={"data": validation_data, "holdout_fraction": 0.0, "workers": 1})
        data = data.with_holdout(prepare_training_data(held_out, settings, model, str(model.path)))
    from reelforge.models.tiny.evaluation import is_shapes_world_model

    world = is_shapes_world_model(model.path)
    brand = config.brand
    if world and brand is None:
        from reelforge.models.loading import load_model

        brand = detect_brand(load_model(config.model, settings, str(model.path), device="cpu"), data)
        logger.info("brand look detected in the training clips: %s", brand or "none")
    total_steps = config.total_steps(data.train_clips)
    if max_steps is not None and total_steps > max_steps:
        from reelforge.jobs.finetune_config import FineTuneConfigError

        raise FineTuneConfigError(
            f"this job resolves to {total_steps} steps ({data.train_clips} clips); at most {max_steps} are allowed",
            param="steps",
        )
    job_id = job_id or new_job_id(config.tenant)

    import ray

    from reelforge.jobs.ray_cluster import ensure_ray

    ensure_ray(settings)
    from ray.train import (
        CheckpointConfig,
        DataConfig,
        FailureConfig,
        RunConfig,
        ScalingConfig,
    )
    from ray.train.torch import TorchTrainer

    from reelforge.jobs.ingest import read_latent_shards
    from reelforge.jobs.train_worker import WorkerPlan, train_loop_per_worker

    shape = ClusterShape(
        int(ray.cluster_resources().get("GPU", 0)), settings.train_node_gpus, settings.train_node_resource
    )
    placement = plan_training_placement(config.workers, config.use_gpu, shape)
    use_gpu = placement.use_gpu
    logger.info("fine-tune %s trains on %s: %s", job_id, "GPUs" if use_gpu else "CPUs", placement.reason)
    # `auto` is resolved in the workers, on the GPU they get: the driver may run on a CPU-only head.
    precision = config.precision if use_gpu else resolve_precision(config.precision, False, False)
    hooks.data_ready(data, total_steps, config.workers, "cuda" if use_gpu else "cpu")

    client = tracking_client(settings)
    experiment_id = tenant_experiment_id(client, settings, config.tenant)
    tags = {
        f"{TAG_PREFIX}tenant": config.tenant,
        f"{TAG_PREFIX}base_model": model.name,
        f"{TAG_PREFIX}dataset_hash": data.dataset_hash,
        f"{TAG_PREFIX}job_id": job_id,
        f"{TAG_PREFIX}fine_tuned_model": config.fine_tuned_model_id,
        f"{TAG_PREFIX}suffix": config.suffix,
        f"{TAG_PREFIX}brand": brand or "",
        # What says whether the look transferred: eval/brand_rate for a look the analyzer knows,
        # else only the model-agnostic held-out eval/loss.
        f"{TAG_PREFIX}look_metric": "eval/brand_rate"
        if brand
        else "none: the footage carries no look the analyzer knows; compare eval/loss",
        "mlflow.runName": f"{config.suffix}-{job_id}",
    }
    if sweep_id:
        tags[f"{TAG_PREFIX}sweep_id"] = sweep_id
    earlier = _earlier_run(client, experiment_id, job_id)
    if earlier is not None:
        # A restarted driver (its predecessor died): the same run continues, and Ray Train resumes the
        # workers from the last checkpoint in `train_storage_url` under the same run name.
        run_id = earlier
        client.update_run(run_id, status="RUNNING")
        logger.info("fine-tune %s continues MLflow run %s", job_id, run_id)
        hooks.run_started(run_id)
    else:
        run_id = client.create_run(experiment_id, run_name=f"{config.suffix}-{job_id}", tags=tags).info.run_id
        hooks.run_started(run_id)
        _log_run_inputs(client, run_id, config, data, model.path, total_steps, precision, use_gpu, brand)

    status_dir = settings.home / "finetune" / job_id / "workers"
    status_dir.mkdir(parents=True, exist_ok=True)
    # Materialised once in the object store: every worker (and every restarted worker) then splits
    # blocks instead of re-reading many small Parquet files, which costs minutes on a small machine.
    datasets = {"train": read_latent_shards(data.root, data.train_shards).materialize()}
    if data.holdout_shards:
        datasets["holdout"] = read_latent_shards(data.root, data.holdout_shards).materialize()
    plan = WorkerPlan(
        job=config,
        model_dir=str(model.path),
        total_steps=total_steps,
        precision=precision,
        status_dir=str(status_dir),
        tracking_uri=settings.resolved_mlflow_tracking_uri,
        run_id=run_id,
        has_holdout=bool(data.holdout_shards),
        world_eval=bool(world),
        brand=brand,
        validation_examples=tuple(validation_examples(config, data, starts_from_images(config, model.spec))),
    )
    trainer = TorchTrainer(
        # Bound here rather than passed as `train_loop_config`, which Ray types as a dict of string keys.
        functools.partial(train_loop_per_worker, plan),
        scaling_config=ScalingConfig(
            num_workers=config.workers,
            use_gpu=use_gpu,
            placement_strategy=config.placement_strategy,
            resources_per_worker=placement.resources_per_worker or None,
        ),
        run_config=RunConfig(
            name=job_id,
            storage_path=settings.resolved_train_storage_url,
            failure_config=FailureConfig(max_failures=config.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
        datasets=datasets,
        dataset_config=DataConfig(datasets_to_split=["train"]),
    )
    stop = threading.Event()
    follower = threading.Thread(
        target=_follow_progress, args=(client, run_id, total_steps, stop, progress), daemon=True
    )
    follower.start()
    try:
        fit_started = time.perf_counter()
        result = trainer.fit()
        device_seconds = (time.perf_counter() - fit_started) * config.workers
    except Exception as exc:
        client.set_terminated(run_id, "FAILED")
        raise FineTuneFailedError(f"fine-tune {job_id} failed: {str(exc).splitlines()[0][:500]}") from exc
    finally:
        stop.set()
        follower.join(timeout=5)
    if result.error is not None or result.checkpoint is None:
        client.set_terminated(run_id, "FAILED")
        raise FineTuneFailedError(f"fine-tune {job_id} failed: {result.error}")

    try:
        hooks.before_register()
    except FineTuneCancelledError:
        client.set_terminated(run_id, "KILLED")
        raise
    adapter_dir = settings.home / "adapters" / config.tenant / job_id
    with result.checkpoint.as_directory() as directory:
        shutil.copytree(Path(directory) / ADAPTER_DIR, adapter_dir / ADAPTER_DIR, dirs_exist_ok=True)
        shutil.copytree(Path(directory) / COMFYUI_DIR, adapter_dir / COMFYUI_DIR, dirs_exist_ok=True)
    metrics = dict(result.metrics or {})
    version_tags = {
        **{k: v for k, v in tags.items() if k.startswith(TAG_PREFIX)},
        f"{TAG_PREFIX}run_id": run_id,
        f"{TAG_PREFIX}steps": str(total_steps),
        **{
            f"{TAG_PREFIX}{k}": f"{metrics[k]:.4f}"
            for k in ("eval_loss", "eval_brand_rate", "eval_adherence")
            if k in metrics
        },
    }
    name = registered_model_name(config.tenant, config.suffix, model.name)
    version = register_adapter(
        settings,
        name,
        source=f"{client.get_run(run_id).info.artifact_uri}/{ADAPTER_DIR}",
        run_id=run_id,
        tags=version_tags,
        description=f"{config.fine_tuned_model_id} from job {job_id} ({total_steps} steps on {data.train_clips} clips)",
        sha256=adapter_sha256(adapter_dir / ADAPTER_DIR),
        base_fingerprint=read_adapter_card(adapter_dir / ADAPTER_DIR).base_fingerprint,  # our own card
    )
    client.set_tag(run_id, f"{TAG_PREFIX}registered_version", f"{name}/{version.version}")
    hooks.registered(name, version.version)
    client.set_terminated(run_id, "FINISHED")
    return FineTuneResult(
        job_id,
        run_id,
        name,
        version.version,
        config.fine_tuned_model_id,
        adapter_dir / ADAPTER_DIR,
        metrics,
        time.perf_counter() - started,
        device_seconds,
        "cuda" if use_gpu else "cpu",
    )


def _log_run_inputs(
    client,
    run_id: str,
    config: FineTuneConfig,
    data: TrainingData,
    model_dir: Path,
    total_steps: int,
    precision: str,
    use_gpu: bool,
    brand: str | None,
) -> None:
    """Params (the whole config, flattened), resolved values, and the dataset as an MLflow input."""
    import mlflow.data
    import pandas as pd
    from mlflow.entities import DatasetInput, InputTag, Param

    params = flatten_params(config.model_dump(mode="json")) | {
        "resolved.total_steps": str(total_steps),
        "resolved.precision": precision,
        "resolved.use_gpu": str(use_gpu),
        "resolved.train_clips": str(data.train_clips),
        "resolved.holdout_clips": str(data.holdout_clips),
        "resolved.global_batch": str(config.global_batch),
        "resolved.model_dir": str(model_dir),
        "resolved.brand": str(brand),
    }
    items = [Param(k, v) for k, v in sorted(params.items())]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i : i + 100])
    frame = pd.DataFrame(data.rows_summary())
    dataset = mlflow.data.from_pandas(frame, source=str(data.root), name=f"{config.tenant}-footage-{data.dataset_hash}")
    client.log_inputs(
        run_id, [DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", "training")])]
    )
