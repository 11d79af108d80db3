"""The per-worker training loop of a fine-tune (runs inside Ray Train's TorchTrainer).

Each worker loads the base model, attaches LoRA (base frozen), hands only the LoRA parameters to
`deepspeed.initialize` (ZeRO-2 or ZeRO-3 over the process group Ray Train set up), reads its shard
of the ingested latents and trains with the base model's objective. Every `checkpoint_every`
steps each worker writes its DeepSpeed state (LoRA weights + its optimizer partition), then all
report together (`ray.train.report` is the barrier). A restarted worker group resumes from
`ray.train.get_checkpoint()`; batches, noise and timesteps are functions of the step, so the
replayed steps see the same data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from reelforge.jobs.finetune_config import FineTuneConfig
from reelforge.jobs.ingest import LatentClip, row_tensors
from reelforge.jobs.train_evaluation import ValidationExample
from reelforge.models.objectives import FlowMatchingObjective

logger = logging.getLogger(__name__)

STATE_TAG = "state"  # DeepSpeed checkpoint tag inside every Ray checkpoint
STATE_FILE = "reelforge_state.json"
ADAPTER_DIR = "adapter"
COMFYUI_DIR = "adapter-comfyui"


def _step_seed(seed: int, rank: int, micro_step: int) -> int:
    return (seed * 1_000_003 + rank * 7919 + micro_step) % (2**63)


class LatentBatch(NamedTuple):
    """One micro-step's clips, stacked, and the generator of its noise."""

    latents: torch.Tensor  # (B, C, F', H', W')
    text: torch.Tensor  # (B, L, D)
    condition: torch.Tensor | None  # (B, ...) the cached first-frame conditions, where the family has them
    generator: torch.Generator


class LatentBatches:
    """This worker's clips in memory, grouped by latent shape; batch k is a pure function of k."""

    def __init__(self, rows: list[LatentClip], batch: int, seed: int, rank: int) -> None:
        self.buckets: dict[tuple, list[int]] = {}
        for i, row in enumerate(rows):
            self.buckets.setdefault(tuple(row.latents.shape), []).append(i)
        self.keys = sorted(self.buckets)
        self.weights = np.array([len(self.buckets[k]) for k in self.keys], dtype=np.float64)
        self.weights /= self.weights.sum()
        self.rows, self.batch, self.seed, self.rank = rows, batch, seed, rank

    def __call__(self, micro_step: int) -> LatentBatch:
        """Micro-step `micro_step`'s batch, the same whenever it is asked for (a resumed run replays it)."""
        rng = np.random.default_rng(_step_seed(self.seed, self.rank, micro_step))
        members = self.buckets[self.keys[rng.choice(len(self.keys), p=self.weights)]]
        picks = [self.rows[i] for i in rng.choice(members, size=self.batch, replace=len(members) < self.batch)]
        conditions = [row.condition for row in picks]
        return LatentBatch(
            torch.stack([row.latents for row in picks]),  # (B, C, F', H', W')
            torch.stack([row.text for row in picks]),  # (B, L, D)
            None if conditions[0] is None else torch.stack(conditions),
            torch.Generator().manual_seed(_step_seed(self.seed, self.rank, micro_step)),
        )


def configured_objective(objective, job: FineTuneConfig):
    """The base model's objective with the job's timestep sampling and shift (flow matching only)."""
    if isinstance(objective, FlowMatchingObjective):
        return dataclasses.replace(
            objective, sampling=job.timestep_sampling, shift=job.timestep_shift or objective.shift
        )
    return objective


def expert_schedule(model, objective, job: FineTuneConfig):
    """The per-micro-step expert choice of a two-expert model (None for one transformer)."""
    from reelforge.models.experts import HIGH_NOISE, LOW_NOISE, ExpertSchedule

    boundary = model.spec.boundary(model.pipeline)
    if boundary is None:
        return None
    if not isinstance(objective, FlowMatchingObjective):
        raise ValueError("two-expert models are flow-matching models")
    chosen = {"all": (HIGH_NOISE, LOW_NOISE), "high_noise": (HIGH_NOISE,), "low_noise": (LOW_NOISE,)}[job.lora.experts]
    return ExpertSchedule(objective.sample_timesteps, boundary / objective.num_train_timesteps, chosen, job.seed)


def _rows(dataset_shard) -> list[LatentClip]:
    return [row_tensors(row) for row in dataset_shard.iter_rows()] if dataset_shard is not None else []


class Heartbeat:
    """Per-rank liveness file (pid, step): what operators and the recovery test look at.

    Written at most every `interval_s` (liveness needs seconds, a small model steps 80 times a
    second) and whenever `beat(force=True)`, as at each checkpoint.
    """

    def __init__(self, status_dir: Path, rank: int, attempt_started: float, interval_s: float = 1.0) -> None:
        # Made here, not only by the driver: on a cluster whose nodes share no disk this is the worker's own node.
        status_dir.mkdir(parents=True, exist_ok=True)
        self.path = status_dir / f"rank-{rank}.json"
        self.attempt_started = attempt_started
        self.interval_s = interval_s
        self._last = float("-inf")

    def beat(self, step: int, force: bool = False) -> None:
        """Record `step` as reached, unless the last write is under `interval_s` old."""
        now = time.time()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"pid": os.getpid(), "step": step, "attempt_started": self.attempt_started, "time": now})
        )
        tmp.replace(self.path)


def _gathered_adapter(model, params: list[torch.nn.Parameter], zero_stage: int) -> dict[str, torch.Tensor]:
    """The LoRA state dict with full tensors on every rank (ZeRO-3 partitions them; gather first)."""
    from reelforge.models.lora import adapter_state_dict

    gathered = contextlib.nullcontext()
    if zero_stage == 3:
        import deepspeed

        gathered = deepspeed.zero.GatheredParameters(params, modifier_rank=None)  # collective: every rank enters
    with gathered:
        return {k: v.detach().clone().cpu() for k, v in adapter_state_dict(model).items()}


@dataclasses.dataclass(frozen=True)
class WorkerPlan:
    """Everything a Train worker needs from the driver: the typed boundary between the two processes."""

    job: FineTuneConfig
    model_dir: str  # the base model's directory, as every worker's node sees it
    total_steps: int
    precision: str  # the job's precision; `auto` is resolved here, on the worker's own device
    status_dir: str  # where workers leave liveness files, on their own node's disk
    tracking_uri: str
    run_id: str  # the MLflow run rank 0 logs to
    has_holdout: bool
    world_eval: bool  # a shapes-world model: adherence and brand looks are measurable
    brand: str | None
    validation_examples: tuple[ValidationExample, ...]  # prompts, and first frames for image-to-video


def train_loop_per_worker(plan: WorkerPlan) -> None:
    """Ray Train entry point: train, evaluate, checkpoint and report until `plan.total_steps`."""
    import deepspeed
    import ray.train
    import torch.distributed as dist
    from ray.train import Checkpoint

    from reelforge.jobs.comfyui_lora import write_comfyui_lora
    from reelforge.jobs.deepspeed_config import base_weights_dtype, deepspeed_config, resolve_precision
    from reelforge.jobs.lr_schedule import lr_factor
    from reelforge.jobs.run_tracking import TAG_PREFIX, RankZeroLogger
    from reelforge.jobs.train_evaluation import eval_loss, validation_videos, world_eval
    from reelforge.jobs.training_placement import cpu_threads_per_worker
    from reelforge.models.loading import load_model
    from reelforge.models.lora import attach_lora, save_adapter
    from reelforge.models.objectives import diffusion_loss

    job = plan.job
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    total_steps: int = plan.total_steps
    heartbeat = Heartbeat(Path(plan.status_dir), rank, attempt_started=time.time())
    torch.manual_seed(job.seed)

    device = ray.train.torch.get_device()
    on_gpu = device.type == "cuda"
    if not on_gpu:
        torch.set_num_threads(cpu_threads_per_worker(len(os.sched_getaffinity(0)), context.get_local_world_size()))
    precision = resolve_precision(plan.precision, on_gpu, on_gpu and torch.cuda.is_bf16_supported())
    model = load_model(job.model, model_path=plan.model_dir, device=device, dtype=base_weights_dtype(precision))
    params = attach_lora(model, job.lora.to_lora_config())
    denoiser = model.denoiser  # the transformer, or both experts behind one router
    if job.gradient_checkpointing:
        denoiser.enable_gradient_checkpointing()
    objective = configured_objective(model.spec.objective(model.pipeline), job)
    experts = expert_schedule(model, objective, job)
    image_rate = job.image_conditioning_rate(model.spec.image_input)
    optimizer = torch.optim.AdamW(params, lr=job.lr, weight_decay=job.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total_steps, job.warmup_steps, job.schedule)
    )
    engine, optimizer, _, scheduler = deepspeed.initialize(
        model=denoiser,
        model_parameters=params,
        optimizer=optimizer,
        lr_scheduler=scheduler,
        config=deepspeed_config(job, precision),
        dist_init_required=False,
    )

    train_rows = _rows(ray.train.get_dataset_shard("train"))
    holdout_rows = _rows(ray.train.get_dataset_shard("holdout")) if plan.has_holdout else []
    batches = LatentBatches(train_rows, job.batch_per_worker, job.seed, rank)
    with torch.no_grad():  # the text encoder is frozen; its output must not carry a graph into every step
        empty_text = model.encode_text([""]).float().cpu()[0]  # (L, D): caption dropout target
    tracker = RankZeroLogger(plan.tracking_uri, plan.run_id, enabled=rank == 0)
    tracker.tag(f"{TAG_PREFIX}precision", precision)  # what `auto` became on this worker's device

    start_step = 0
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            engine.load_checkpoint(directory, tag=STATE_TAG, load_module_strict=False)
            start_step = json.loads((Path(directory) / STATE_FILE).read_text())["step"]
        logger.info("rank %d resumed from step %d", rank, start_step)
        tracker.metrics({"train/resumed_from_step": start_step}, step=start_step)
    validation_examples = list(plan.validation_examples)

    def evaluate(step: int) -> dict[str, float]:
        engine.eval()
        metrics: dict[str, float] = {}
        if holdout_rows:
            metrics.update(eval_loss(model, engine, holdout_rows, job.eval_timesteps, rank, world))
        if plan.world_eval and job.world_eval_prompts:
            result = world_eval(model, job.world_eval_prompts, job.world_eval_seeds, plan.brand, rank, world)
            # A brand rate only where the footage carries a look the analyzer knows: otherwise nobody
            # measured the look, and 0.000 would tell the user it did not transfer.
            keys = ("adherence", "colour_acc", "shape_acc", *(("brand_rate",) if plan.brand else ()))
            metrics.update({f"eval/{k}": result[k] for k in keys})
        if validation_examples:
            with tempfile.TemporaryDirectory() as tmp:
                validation_videos(model, validation_examples, Path(tmp), write=rank == 0)
                tracker.artifacts(Path(tmp), f"validation/step-{step:06d}")
        if job.deepspeed.zero_stage == 3:
            # Generation runs the transformer outside the engine's step, and ZeRO-3's prefetch can leave
            # parameters in flight (a model larger than one prefetch bucket: any true-size Wan); the
            # adapter gather after the final eval then fails with "Cannot partition a param in flight".
            engine.empty_partition_cache()
        engine.train()
        tracker.metrics(metrics, step=step)
        return metrics

    last_eval: dict[str, float] = {}
    if start_step == 0:
        last_eval = evaluate(0)  # the untouched base model (LoRA B starts at zero): every curve's origin
    engine.train()
    for step in range(start_step, total_steps):
        started = time.perf_counter()
        losses = []
        for micro in range(job.grad_accum):
            micro_step = step * job.grad_accum + micro
            x0, text, clip_condition, generator = batches(micro_step)
            if job.caption_dropout:
                drop = torch.rand(x0.shape[0], generator=generator) < job.caption_dropout
                text = torch.where(drop[:, None, None], empty_text.expand_as(text), text)
            eps = torch.randn(x0.shape, generator=generator)  # (B, C, F, H, W)
            if experts is None:
                t = objective.sample_timesteps(x0.shape[0], generator)  # (B,)
            else:  # one expert per micro-step, the same on every rank
                t = experts.sample(x0.shape[0], micro_step, generator)
            batch = objective.batch(x0, eps, t)
            conditioned = torch.zeros(x0.shape[0], dtype=torch.bool)
            if image_rate > 0:  # samples that keep their clip's first frame (image-to-video)
                conditioned = torch.rand(x0.shape[0], generator=generator) < image_rate
            hidden, timesteps, loss_mask = model.spec.training_inputs(
                engine,
                batch.noisy.to(device),
                x0.to(device),
                batch.model_timesteps.to(device),
                conditioned.to(device),
                None if clip_condition is None else clip_condition.to(device),
            )
            prediction = model.spec.call_denoiser(engine, hidden, timesteps, text.to(device))  # (B, C, F, H, W)
            loss = diffusion_loss(prediction.float(), batch.target.to(device), mask=loss_mask)
            engine.backward(loss)
            engine.step()
            losses.append(loss.item())
        done = step + 1
        loss_sum = torch.tensor([sum(losses) / len(losses)], dtype=torch.float64)
        if world > 1:
            dist.all_reduce(loss_sum)
        seconds = time.perf_counter() - started
        grad_norm = engine.get_global_grad_norm()
        tracker.metrics(
            {
                "train/loss": loss_sum.item() / world,
                "train/lr": scheduler.get_last_lr()[0],
                "train/grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
                "train/samples_per_s": job.global_batch / max(seconds, 1e-9),
                "train/step": done,
            },
            step=done,
            buffered=True,  # written every few seconds and before each checkpoint's report
        )
        checkpointing = done % job.checkpoint_every == 0 or done == total_steps
        heartbeat.beat(done, force=checkpointing)
        if done % job.eval_every == 0 or done == total_steps:
            last_eval = evaluate(done)
        if checkpointing:
            final = done == total_steps
            adapter = _gathered_adapter(model, params, job.deepspeed.zero_stage) if final else None
            tracker.flush()  # every step's metrics are in the run before its checkpoint is
            with tempfile.TemporaryDirectory() as tmp:
                engine.save_checkpoint(tmp, tag=STATE_TAG, client_state={"step": done}, exclude_frozen_parameters=True)
                if rank == 0:
                    (Path(tmp) / STATE_FILE).write_text(json.dumps({"step": done, "total_steps": total_steps}))
                    if final:
                        card = {
                            "tenant": job.tenant,
                            "fine_tuned_model": job.fine_tuned_model_id,
                            "run_id": plan.run_id,
                            "steps": done,
                            "brand": plan.brand,
                        }
                        adapter_dir = save_adapter(model, Path(tmp) / ADAPTER_DIR, state_dict=adapter, extra=card)
                        write_comfyui_lora(adapter_dir, Path(tmp) / COMFYUI_DIR)
                        tracker.artifacts(Path(tmp) / ADAPTER_DIR, ADAPTER_DIR)
                        tracker.artifacts(Path(tmp) / COMFYUI_DIR, COMFYUI_DIR)
                metrics = {
                    "step": done,
                    "loss": loss_sum.item() / world,
                    "resumed_from_step": start_step,
                    **{k.replace("/", "_"): v for k, v in last_eval.items()},
                }
                ray.train.report(
                    metrics, checkpoint=Checkpoint.from_directory(tmp), checkpoint_dir_name=f"checkpoint-{done:07d}"
                )
            tracker.metrics({"checkpoint/step": done}, step=done)  # lets followers list checkpoints as they land
