"""What Ray Train + DeepSpeed cost per training step: the fine-tune worker loop's throughput divided
by a bare PyTorch + peft loop's, on the same model, clips, batch and thread count, in one run.

    python -m bench.train_overhead [--steps 200] [--rounds 3] [--clips 12] [--batch 4]

The Ray side is `run_finetune` itself with one worker (ZeRO-2): its throughput is read off the
timestamps MLflow recorded for each step's loss, so everything a step costs in the real loop counts
(DeepSpeed's engine step, MLflow logging from rank 0, the heartbeat file). The bare side is the same
step written plainly (the objective, caption dropout, LoRA through peft, gradient clipping, torch's
AdamW, the same latents and batch), timed in this process at the faster of one thread and every core.
Bare and Ray runs alternate for `--rounds` rounds, and the ratio is median over median, so drift on
a shared machine falls on both sides. The first steps of each are left out (warm-up). A ratio of
1.0 means the platform costs nothing per step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench.report import save_result
from reelforge.jobs.finetune import run_finetune
from reelforge.jobs.finetune_config import build_config
from reelforge.jobs.ingest import read_latent_shards, row_tensors
from reelforge.jobs.lr_schedule import lr_factor
from reelforge.jobs.run_tracking import tracking_client
from reelforge.jobs.train_worker import LatentBatches, configured_objective
from reelforge.jobs.training_data import prepare_training_data
from reelforge.models.loading import describe_model, load_model
from reelforge.models.lora import attach_lora
from reelforge.models.objectives import diffusion_loss
from reelforge.models.tiny.footage import write_footage
from reelforge.settings import Settings

WARMUP_STEPS = 10


def ray_train_steps_per_s(settings: Settings, run_id: str) -> float:
    """Steady-state steps per second of a finished run, from the times its losses were logged."""
    history = sorted(tracking_client(settings).get_metric_history(run_id, "train/loss"), key=lambda m: m.step)
    steady = [m for m in history if m.step > WARMUP_STEPS]
    return (len(steady) - 1) / ((steady[-1].timestamp - steady[0].timestamp) / 1000.0)


def bare_steps_per_s(config, settings: Settings, steps: int) -> float:
    """The same training step without Ray Train or DeepSpeed, on the clips the fine-tune ingested."""
    description = describe_model(config.model, settings)
    data = prepare_training_data(config, settings, description, str(description.path))  # the cache: no re-ingest
    rows = [row_tensors(row) for row in read_latent_shards(data.root, data.train_shards).iter_rows()]
    torch.manual_seed(config.seed)
    model = load_model(config.model, settings, device="cpu", dtype=torch.float32)
    params = attach_lora(model, config.lora.to_lora_config())
    objective = configured_objective(model.spec.objective(model.pipeline), config)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, steps, config.warmup_steps, config.schedule)
    )
    batches = LatentBatches(rows, config.batch_per_worker, config.seed, 0)
    with torch.no_grad():
        empty_text = model.encode_text([""]).float()[0]  # (L, D): caption dropout target
    model.transformer.train()
    started = None
    for step in range(steps):
        if step == WARMUP_STEPS:
            started = time.perf_counter()
        x0, text, generator = batches(step)
        drop = torch.rand(x0.shape[0], generator=generator) < config.caption_dropout  # (B,)
        text = torch.where(drop[:, None, None], empty_text.expand_as(text), text)  # (B, L, D)
        eps = torch.randn(x0.shape, generator=generator)  # (B, C, F, H, W)
        t = objective.sample_timesteps(x0.shape[0], generator)  # (B,)
        batch = objective.batch(x0, eps, t)
        prediction = model.spec.predict(model.transformer, batch.noisy, batch.model_timesteps, text)
        loss = diffusion_loss(prediction.float(), batch.target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        schedule.step()
        loss.item()  # as the worker does: the loss is read every step
    return (steps - WARMUP_STEPS) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> dict:
    """Run both loops and print the ratio; saves bench-output/train_overhead.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("bench-output/train_overhead.json"))
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="reelforge-bench-"))
    settings = Settings(home=home)
    write_footage(home / "footage", count=args.clips, seed=1)
    config = build_config(
        {"tenant": "bench", "data": str(home / "footage")},
        [
            f"steps={args.steps}",
            "workers=1",
            f"batch_per_worker={args.batch}",
            "world_eval_prompts=0",
            "validation_videos=0",
            "holdout_fraction=0",
            f"eval_every={args.steps * 10}",
            f"checkpoint_every={args.steps}",
        ],
    )
    # Ingest once (the bare loop reads the fine-tune's latent cache), pick the bare loop's faster
    # thread count, then alternate bare and Ray runs: on a shared machine speed drifts by 20% from
    # minute to minute, and the medians of interleaved runs keep that drift off the ratio.
    threads = torch.get_num_threads()
    by_threads: dict[int, float] = {}
    bare_rates: list[float] = []
    ray_rates: list[float] = []
    try:
        description = describe_model(config.model, settings)
        prepare_training_data(config, settings, description, str(description.path))
        for count in sorted({1, os.cpu_count() or 1}):
            torch.set_num_threads(count)
            by_threads[count] = bare_steps_per_s(config, settings, args.steps)
        best = max(by_threads, key=by_threads.get)
        for _ in range(args.rounds):
            torch.set_num_threads(best)
            bare_rates.append(bare_steps_per_s(config, settings, args.steps))
            torch.set_num_threads(threads)
            ray_rates.append(ray_train_steps_per_s(settings, run_finetune(config, settings).run_id))
    finally:
        torch.set_num_threads(threads)
    ray_rate, bare_rate = statistics.median(ray_rates), statistics.median(bare_rates)
    return save_result(
        {
            "bench": "train_overhead",
            "steps": args.steps,
            "rounds": args.rounds,
            "warmup_steps_left_out": WARMUP_STEPS,
            "batch_per_worker": args.batch,
            "workers": 1,
            "zero_stage": config.deepspeed.zero_stage,
            "bare_steps_per_s_by_threads": {k: round(v, 3) for k, v in by_threads.items()},
            "bare_torch_peft_steps_per_s (each round)": [round(r, 3) for r in bare_rates],
            "ray_train_deepspeed_steps_per_s (each round)": [round(r, 3) for r in ray_rates],
            "ratio_each_round": [round(r / b, 3) for r, b in zip(ray_rates, bare_rates, strict=True)],
            "ratio (median / median)": round(ray_rate / bare_rate, 3),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
