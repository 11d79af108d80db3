"""Our sampling loop against diffusers' `WanPipeline.__call__` on the same model, seed and settings.

Both run alternately in one process (A, B, A, B, ...) so machine noise hits both alike; the result
is the ratio of medians (ours / pipeline: < 1 means ours is faster) plus peak GPU memory of each.
Ours batches the conditional and unconditional passes into one transformer call; the pipeline
makes two calls per step.

    python -m bench.sampling_vs_pipeline                         # reelforge-tiny on the CPU
    python -m bench.sampling_vs_pipeline --model wan-1.3b-random --device cuda --size 832x480 --frames 81
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from bench.report import save_result
from reelforge.models.loading import VideoModel, default_dtype, load_model
from reelforge.models.sampling import (
    GenerationSettings,
    denoise,
    parse_size,
    resolve_settings,
)
from reelforge.models.spec import ModelDefaults
from reelforge.models.wan import WanSpec

PROMPT = "a red circle moving left on a white background"


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device) -> tuple[float, float]:
    """(seconds, peak GiB of GPU memory; 0 on CPU) of one call."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _synchronize(device)
    start = time.perf_counter()
    fn()
    _synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    return seconds, peak


def _load(args: argparse.Namespace) -> VideoModel:
    device = torch.device(args.device)
    if args.model != "wan-1.3b-random":
        return load_model(args.model, device=device)
    from bench.wan_architectures import build_wan_1_3b_random

    dtype = default_dtype(device)
    pipeline = build_wan_1_3b_random(device, dtype)
    defaults = ModelDefaults(
        height=480, width=832, num_frames=81, fps=16.0, steps=50, guidance=5.0, max_text_tokens=512
    )
    return VideoModel("wan-1.3b-random", Path("."), WanSpec(), pipeline, defaults, device, dtype)


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison and return (and print, and save) its result."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="reelforge-tiny", help="preset, model directory, or wan-1.3b-random")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", default=None, help="WIDTHxHEIGHT (default: the model's)")
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench-output/sampling_vs_pipeline.json"))
    args = parser.parse_args(argv)

    model = _load(args)
    width, height = parse_size(args.size) if args.size else (None, None)
    s = resolve_settings(
        model,
        GenerationSettings(
            PROMPT, num_frames=args.frames, height=height, width=width, steps=args.steps, guidance=args.guidance, seed=0
        ),
    )

    def ours() -> torch.Tensor:
        return denoise(model, s)

    def pipeline() -> torch.Tensor:
        return model.pipeline(
            prompt=PROMPT,
            negative_prompt=s.negative_prompt,
            height=s.height,
            width=s.width,
            num_frames=s.num_frames,
            num_inference_steps=s.steps,
            guidance_scale=s.guidance,
            output_type="latent",
            generator=torch.Generator("cpu").manual_seed(s.seed),
            max_sequence_length=model.defaults.max_text_tokens,
        ).frames

    device = model.device
    with torch.no_grad():
        a, b = ours(), pipeline()  # warm-up (kernels, allocator) and a correctness check
        max_diff = (a.float() - b.float()).abs().max().item()
        times = {"ours": [], "pipeline": []}
        peaks = {"ours": 0.0, "pipeline": 0.0}
        for _ in range(args.repeats):
            for name, fn in (("ours", ours), ("pipeline", pipeline)):
                seconds, peak = _timed(fn, device)
                times[name].append(seconds)
                peaks[name] = max(peaks[name], peak)
    median = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "model": model.name,
        "device": str(device),
        "dtype": str(model.dtype),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "size": f"{s.width}x{s.height}",
        "frames": s.num_frames,
        "steps": s.steps,
        "guidance": s.guidance,
        "repeats": args.repeats,
        "median_seconds": median,
        "seconds_per_step": {k: v / s.steps for k, v in median.items()},
        "peak_gib": peaks,
        "ratio_ours_over_pipeline": median["ours"] / median["pipeline"],
        "max_abs_latent_diff": max_diff,
    }
    return save_result(result, args.out)


if __name__ == "__main__":
    main()
