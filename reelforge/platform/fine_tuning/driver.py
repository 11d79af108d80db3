"""The driver of one API fine-tuning job, run as a Ray Job: `python -m reelforge.platform.fine_tuning.driver JOB_ID`.

It fetches the tenant's uploaded footage, runs the same `run_finetune` as `reelforge finetune`
(ingest -> Ray Train + DeepSpeed -> MLflow run in the tenant's experiment -> registry), writes the
job's events and checkpoints as they happen, promotes the version when the tenant's policy says
so, and settles the job. A cancel is honoured before anything is registered.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

from reelforge.errors import UserInputError
from reelforge.jobs.adapter_registry import promote
from reelforge.jobs.finetune import (
    FineTuneCancelledError,
    FineTuneFailedError,
    FineTuneHooks,
    run_finetune,
)
from reelforge.jobs.finetune_config import FineTuneConfig, FineTuneConfigError
from reelforge.jobs.run_tracking import tracking_client
from reelforge.jobs.training_data import TrainingData, TrainingDataError
from reelforge.platform.stores.audit_log import (
    ADAPTER_PROMOTED,
    FINETUNE_COMPLETED,
    FINETUNE_FAILED,
    AuditLog,
)
from reelforge.platform.stores.blob_store import BlobStore
from reelforge.platform.stores.files import FileStore
from reelforge.platform.stores.fine_tune_jobs import ACTIVE, FineTuneStore
from reelforge.settings import Settings

logger = logging.getLogger(__name__)
FOLLOW_INTERVAL_S = 2.0
EVAL_KEYS = ("eval/loss", "eval/brand_rate", "eval/adherence")


class JobProgress(FineTuneHooks):
    """Turns a fine-tune's phases and MLflow metrics into the job's events and checkpoints."""

    def __init__(self, store: FineTuneStore, job_id: str, fine_tuned_model: str, settings: Settings) -> None:
        self.store = store
        self.job_id = job_id
        self.fine_tuned_model = fine_tuned_model
        self.settings = settings
        self.total_steps = 0
        self.run_id: str | None = None
        self._seen: dict[str, int] = {}  # metric key -> last step turned into an event
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def data_ready(self, data: TrainingData, total_steps: int, workers: int, device: str) -> None:
        self.total_steps = total_steps
        videos = len(set(data.files_per_shard.values()))
        self.store.add_event(
            self.job_id,
            f"Ingested {data.train_clips + data.holdout_clips} clips from {videos} videos "
            f"({data.train_clips} for training, {data.holdout_clips} held out)",
            data={"train_clips": data.train_clips, "holdout_clips": data.holdout_clips, "videos": videos},
        )
        self.store.mark_running(self.job_id, device, workers, total_steps)
        self.store.add_event(self.job_id, f"Training started: {total_steps} steps on {workers} {device} worker(s)")

    def run_started(self, run_id: str) -> None:
        self.run_id = run_id
        self.store.set_run(self.job_id, run_id)
        # A run an earlier driver started: what it already turned into events is not repeated.
        client = tracking_client(self.settings)
        for seen, key in (
            ("train", "train/loss"),
            ("checkpoint", "checkpoint/step"),
            ("resumed", "train/resumed_from_step"),
        ):
            self._seen[seen] = max(self._history(client, key), default=0)
        self._seen["eval"] = max((max(self._history(client, k), default=-1) for k in EVAL_KEYS), default=-1)
        self._thread = threading.Thread(target=self._follow, daemon=True, name="fine-tune-events")
        self._thread.start()

    def before_register(self) -> None:
        self.stop_following()
        if self.store.cancel_requested(self.job_id):
            raise FineTuneCancelledError(f"fine-tuning job {self.job_id} was cancelled")

    def registered(self, name: str, version: int) -> None:
        self.store.set_registered(self.job_id, f"{name}/{version}")
        # The final checkpoint is the registered adapter: its id is one /v1/videos serves.
        self.store.name_checkpoint(self.job_id, self.total_steps, f"{self.fine_tuned_model}@{version}")
        self.store.add_event(
            self.job_id,
            f"Registered {name} version {version} as {self.fine_tuned_model}@{version}",
            data={"registered_model": name, "version": version},
        )

    def stop_following(self) -> None:
        """Stop the follower and turn the metrics it has not seen yet into events."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
            self._emit_new()

    def _follow(self) -> None:
        while not self._stop.wait(FOLLOW_INTERVAL_S):
            try:
                self._emit_new()
            except Exception:
                logger.exception("could not follow the run's metrics")

    def _history(self, client, key: str) -> dict[int, float]:
        return {m.step: m.value for m in client.get_metric_history(self.run_id, key)}

    def _emit_new(self) -> None:
        """Events for new training steps and evals, a checkpoint row per new checkpoint."""
        client = tracking_client(self.settings)
        for step in sorted(self._history(client, "train/resumed_from_step")):
            if step > self._seen.get("resumed", 0):
                self._seen["resumed"] = step
                self.store.add_event(
                    self.job_id,
                    f"Resumed from step {step}, the last checkpoint before the training driver stopped",
                    data={"step": step},
                )
        losses = self._history(client, "train/loss")
        for step in sorted(s for s in losses if s > self._seen.get("train", 0)):
            self.store.add_event(
                self.job_id,
                f"Step {step}/{self.total_steps}: training loss={losses[step]:.4f}",
                data={"step": step, "train_loss": losses[step], "total_steps": self.total_steps},
                type_="metrics",
            )
            self._seen["train"] = step
        evals = {key: self._history(client, key) for key in EVAL_KEYS}
        eval_steps = sorted({s for values in evals.values() for s in values})
        for step in (s for s in eval_steps if s >= self._seen.get("eval", -1) + 1):
            values = {key.split("/")[1]: evals[key][step] for key in EVAL_KEYS if step in evals[key]}
            shown = ", ".join(f"{k}={v:.4f}" for k, v in values.items())
            self.store.add_event(
                self.job_id, f"Evaluation at step {step}: {shown}", data={"step": step, **values}, type_="metrics"
            )
            self._seen["eval"] = step
        for step in sorted(s for s in self._history(client, "checkpoint/step") if s > self._seen.get("checkpoint", 0)):
            metrics = {"train_loss": losses.get(step)}
            latest_eval = max((s for s in eval_steps if s <= step), default=None)
            if latest_eval is not None and latest_eval in evals["eval/loss"]:
                metrics["valid_loss"] = evals["eval/loss"][latest_eval]
            model_id = f"{self.fine_tuned_model}:ckpt-step-{step}"
            self.store.add_checkpoint(self.job_id, step, model_id, {k: v for k, v in metrics.items() if v is not None})
            self.store.add_event(self.job_id, f"Checkpoint saved at step {step}", data={"step": step})
            self._seen["checkpoint"] = step


def _fetch_training_data(settings: Settings, tenant: str, file_id: str, work: Path) -> Path:
    """The uploaded archive, copied to the driver's work directory under its original name."""
    stored = FileStore(settings.resolved_database_url).get(tenant, file_id)
    work.mkdir(parents=True, exist_ok=True)
    return BlobStore(settings.resolved_storage_url).fetch_upload(tenant, file_id, work / stored.filename)


def run_job(job_id: str, settings: Settings, max_steps: int | None = None) -> int:
    """Run one job to its end; returns the process exit code (0 also for a cancelled job)."""
    store = FineTuneStore(settings.resolved_database_url)
    audit = AuditLog(settings.resolved_database_url)
    job = store.get(None, job_id)
    if job.status not in ACTIVE:
        logger.info("job %s is already %s", job_id, job.status)
        return 0
    actor = f"fine-tuning:{job_id}"
    work = settings.home / "finetune" / job_id
    archives: dict[str, Path] = {}
    for label, file_id in (("training_file", job.training_file), ("validation_file", job.validation_file)):
        if file_id is None:
            continue
        try:
            archives[label] = _fetch_training_data(settings, job.tenant, file_id, work / label)
        except UserInputError as exc:  # deleted since the job was created
            store.fail(job_id, f"invalid_{label}", f"{label} {file_id}: {exc.message}", label)
            return 1
        store.add_event(job_id, f"Fetched {label} {file_id} ({archives[label].stat().st_size} bytes); ingesting it")
    archive = archives["training_file"]
    config = FineTuneConfig.model_validate({**job.config, "data": str(archive)})
    progress = JobProgress(store, job_id, config.fine_tuned_model_id, settings)
    try:
        result = run_finetune(
            config,
            settings,
            model_path=job.model_path,
            job_id=job_id,
            hooks=progress,
            max_steps=max_steps,
            validation_data=archives.get("validation_file"),
        )
    except FineTuneCancelledError:
        store.add_event(job_id, "Cancelled before registration; nothing was registered")
        return 0
    except (TrainingDataError, FineTuneConfigError, FineTuneFailedError) as exc:
        progress.stop_following()
        code = {TrainingDataError: "invalid_training_file", FineTuneConfigError: "invalid_hyperparameters"}.get(
            type(exc), "training_failed"
        )
        param = "training_file" if code == "invalid_training_file" else None
        store.fail(job_id, code, exc.message, param)
        store.add_event(job_id, f"Job failed: {exc.message}", level="error")
        audit.record(job.tenant, actor, FINETUNE_FAILED, job_id, code=code, message=exc.message[:500])
        return 1
    except BaseException as exc:
        progress.stop_following()
        store.fail(job_id, "internal_error", f"the training driver crashed: {type(exc).__name__}: {exc}")
        raise
    registered = f"{result.registered_model}/{result.version}"
    if job.auto_promote and not store.cancel_requested(job_id):
        promote(settings, result.registered_model, result.version)
        store.add_event(job_id, f"Promoted {registered} to production (tenant policy auto_promote)")
        audit.record(job.tenant, actor, ADAPTER_PROMOTED, registered, automatic=True)
    # The versioned id names exactly this job's adapter, promoted or not.
    if not store.succeed(job_id, f"{result.fine_tuned_model}@{result.version}"):
        # Cancelled while registering: leave nothing behind, as a cancel promises.
        tracking_client(settings).delete_model_version(result.registered_model, str(result.version))
        store.add_event(job_id, f"Cancelled during registration; removed {registered}")
        return 0
    metrics = {k: round(v, 4) for k, v in result.metrics.items() if isinstance(v, float)}
    store.add_event(job_id, f"Job succeeded in {result.seconds:.0f}s: {registered}", data={"metrics": metrics})
    audit.record(
        job.tenant,
        actor,
        FINETUNE_COMPLETED,
        job_id,
        run_id=result.run_id,
        registered=registered,
        fine_tuned_model=result.fine_tuned_model,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the Ray Job."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job_id")
    parser.add_argument("--max-steps", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run_job(args.job_id, Settings.from_env(), args.max_steps)
    except UserInputError as exc:
        logger.error("%s", exc.message)
        return 2


if __name__ == "__main__":
    sys.exit(main())
