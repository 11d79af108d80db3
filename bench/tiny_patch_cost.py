"""What a 1x1 transformer patch would cost reelforge-tiny per training step, against the shipped 2x2.

    python -m bench.tiny_patch_cost [--rounds 3] [--steps 8] [--batch 32]

docs/models.md leaves one idea for image-to-video identity untried: a 1x1 patch, so a moving
object's outline spans several tokens instead of lying inside one or two. It means pretraining the
transformer again. This measures the price: the shipped transformer's config with each patch size,
random weights, one training step (forward, backward, AdamW) on a batch of the shipped latent shape,
read off the model's defaults and VAE (16 x 5 x 8 x 8 today: 80 tokens with 2x2, 320 with 1x1). The two alternate for `--rounds` rounds and the
first round is left out as warm-up, so drift on a shared machine falls on both; the ratio is median
over median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from diffusers import WanTransformer3DModel

from bench.report import save_result
from reelforge.models.presets import PACKAGED_TINY_DIR

PATCHES = {"2x2 (shipped)": (1, 2, 2), "1x1": (1, 1, 1)}


def _seconds_per_step(model: WanTransformer3DModel, optimizer: torch.optim.Optimizer, steps: int, batch) -> float:
    """Mean wall seconds of `steps` training steps on the fixed `batch`."""
    latents, timesteps, text = batch
    started = time.perf_counter()
    for _ in range(steps):
        prediction = model(hidden_states=latents, timestep=timesteps, encoder_hidden_states=text, return_dict=False)[0]
        loss = prediction.square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - started) / steps


def run(rounds: int, steps: int, batch_size: int, threads: int) -> dict:
    """Time both patch sizes, alternating, and return seconds per step and their ratio."""
    torch.set_num_threads(threads)
    config = WanTransformer3DModel.load_config(str(PACKAGED_TINY_DIR / "transformer"))
    trainers = {}
    for name, patch in PATCHES.items():
        torch.manual_seed(0)
        model = WanTransformer3DModel.from_config({**config, "patch_size": list(patch)})
        trainers[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-4))
    defaults = json.loads((PACKAGED_TINY_DIR / "reelforge.json").read_text())["defaults"]
    vae = json.loads((PACKAGED_TINY_DIR / "vae" / "config.json").read_text())
    spatial, temporal = vae["scale_factor_spatial"], vae["scale_factor_temporal"]
    latent_shape = (
        config["in_channels"],
        (defaults["num_frames"] - 1) // temporal + 1,
        defaults["height"] // spatial,
        defaults["width"] // spatial,
    )
    batch = (
        torch.randn(batch_size, *latent_shape),  # (B, C, F', H', W')
        torch.rand(batch_size) * 1000,  # (B,)
        torch.randn(batch_size, defaults["max_text_tokens"], config["text_dim"]),  # (B, L, D)
    )
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for round_index in range(rounds + 1):
        for name, (model, optimizer) in trainers.items():
            seconds = _seconds_per_step(model, optimizer, steps, batch)
            if round_index:  # round 0 warms up
                times[name].append(seconds)
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "bench": "tiny_patch_cost",
        "batch": batch_size,
        "threads": threads,
        "latent_shape": list(latent_shape),
        "seconds_per_step": {name: round(value, 4) for name, value in medians.items()},
        "rounds": {name: [round(v, 4) for v in values] for name, values in times.items()},
        "ratio_1x1_over_2x2": round(medians["1x1"] / medians["2x2 (shipped)"], 2),
    }


def main(argv: list[str] | None = None) -> None:
    """Command line; writes bench-output/tiny_patch_cost.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8, help="training steps per round and patch size")
    parser.add_argument("--batch", type=int, default=32, help="the first-frame training's batch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench-output/tiny_patch_cost.json"))
    args = parser.parse_args(argv)
    for flag in ("rounds", "steps", "batch", "threads"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1")
    save_result(run(args.rounds, args.steps, args.batch, args.threads), args.out)


if __name__ == "__main__":
    main()
