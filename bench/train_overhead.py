"""What Ray Train + DeepSpeed cost per training step: the fine-tune worker loop's throughput divided
by a bare PyTorch + peft loop's, on the same model, clips, batch and thread count, in one run.

    python -m bench.train_overhead [--steps 60] [--clips 12] [--batch 4]

The Ray side is `run_finetune` itself with one worker (ZeRO-2): its throughput is read off the
timestamps MLflow recorded for each step's loss, so everything a step costs in the real loop counts
(DeepSpeed's engine step, MLflow logging from rank 0, the heartbeat file). The bare side is the same
step written plainly (the objective, LoRA through peft, torch's AdamW, the same latents and batch),
timed in this process at one thread and at every core, and the faster of the two is the baseline
(how many threads torch takes inside a Ray worker is Ray's business; the baseline is the best the
plain loop does here). The first steps of each are left out (warm-up). A ratio of 1.0 means the
platform costs nothing per step.
"""

from __future__ import annotations

import argparse
import os
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
    model.transformer.train()
    started = None
    for step in range(steps):
        if step == WARMUP_STEPS:
            started = time.perf_counter()
        x0, text, generator = batches(step)
        eps = torch.randn(x0.shape, generator=generator)  # (B, C, F, H, W)
        t = objective.sample_timesteps(x0.shape[0], generator)  # (B,)
        batch = objective.batch(x0, eps, t)
        prediction = model.spec.predict(model.transformer, batch.noisy, batch.model_timesteps, text)
        loss = diffusion_loss(prediction.float(), batch.target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        loss.item()  # as the worker does: the loss is read every step
    return (steps - WARMUP_STEPS) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> dict:
    """Run both loops and print the ratio; saves bench-output/train_overhead.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
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
    result = run_finetune(config, settings)
    ray_rate = ray_train_steps_per_s(settings, result.run_id)
    threads = torch.get_num_threads()
    bare_rates = {}
    try:
        for count in sorted({1, os.cpu_count() or 1}):
            torch.set_num_threads(count)
            bare_rates[count] = bare_steps_per_s(config, settings, args.steps)
    finally:
        torch.set_num_threads(threads)
    bare_rate = max(bare_rates.values())
    return save_result(
        {
            "bench": "train_overhead",
            "steps": args.steps,
            "warmup_steps_left_out": WARMUP_STEPS,
            "batch_per_worker": args.batch,
            "workers": 1,
            "zero_stage": config.deepspeed.zero_stage,
            "ray_train_deepspeed_steps_per_s": round(ray_rate, 3),
            "bare_torch_peft_steps_per_s_by_threads": {k: round(v, 3) for k, v in bare_rates.items()},
            "bare_torch_peft_steps_per_s (baseline: the faster)": round(bare_rate, 3),
            "ratio": round(ray_rate / bare_rate, 3),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
