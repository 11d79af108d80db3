"""GPU acceptance: seconds per step and peak GPU memory of what a Wan deployment runs, beside public anchors.

    python -m bench.gpu_acceptance            # one H100 or H200: about 4 minutes on an H200
    python -m bench.gpu_acceptance --smoke    # tiny configs on the CPU: checks the script itself

Every model is the true architecture with random weights (`bench.wan_architectures`): speed and
memory do not depend on the values of the weights, so nothing is downloaded. Stages:

* generation: Wan 2.1 1.3B at 480x832x81 and Wan 2.2 TI2V-5B at 704x1280x121 from a first frame,
  with classifier-free guidance (two transformer passes per step, batched), through reelforge's
  sampler;
* LoRA training: 1.3B at 480p x 81 frames, rank 32, DeepSpeed ZeRO-2, gradient checkpointing off
  then on (an out-of-memory is reported, not fatal);
* an adapter hot switch: load a rank-32 adapter from disk and make it active;
* one 14B expert of Wan 2.2 I2V-A14B at 480p x 81: a guided denoising step and a rank-32 LoRA step
  with gradient checkpointing, the size the public 14B anchors were measured at.

`--stages 1.3b,ti2v,a14b` picks models; each stage's result is saved as soon as it ends, and a
stage that fails is recorded with its error while the others still run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import socket
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.report import save_result
from reelforge.models.loading import VideoModel
from reelforge.models.lora import LoraConfig, activate_adapter, attach_lora, load_adapter, save_adapter, unload_adapter
from reelforge.models.sampling import GenerationSettings, generate
from reelforge.models.spec import ModelDefaults
from reelforge.models.wan import WanSpec
from reelforge.models.wan_ti2v import WanTI2VSpec

ANCHORS = {
    "generate_1_3b": "Wan 1.3B: about 4 minutes for 5 s at 480p on an RTX 4090 (50 steps: ~4.8 s/step)",
    "generate_ti2v_5b": "(no public anchor at 704x1280x121; for scale: 14B I2V at 480p, 9.77 s/step on one H100)",
    "lora_1_3b_gc_off": "(anchor is for 14B: a14b_expert_lora_gc_on)",
    "lora_1_3b_gc_on": "(anchor is for 14B: a14b_expert_lora_gc_on)",
    "adapter_hot_switch": "(no public anchor; seconds for load + activate)",
    "a14b_expert_guided_step": "diffusers Wan 2.1 I2V-14B at 480p: 9.77 s/step on one H100",
    "a14b_expert_lora_gc_on": "Wan 14B I2V LoRA: about 10 s/it on one H200",
}


@dataclass(frozen=True)
class Sizes:
    """What each stage runs at: true sizes on a GPU, tiny ones for --smoke."""

    gen_1_3b: tuple[int, int, int]  # frames, height, width
    gen_ti2v: tuple[int, int, int]
    train: tuple[int, int, int]
    steps: int
    train_steps: int
    text_tokens: int


TRUE = Sizes(
    gen_1_3b=(81, 480, 832), gen_ti2v=(121, 704, 1280), train=(81, 480, 832), steps=4, train_steps=3, text_tokens=512
)
SMOKE = Sizes(gen_1_3b=(9, 32, 32), gen_ti2v=(9, 32, 32), train=(9, 32, 32), steps=3, train_steps=2, text_tokens=12)


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize()
    return round(torch.cuda.max_memory_allocated() / 2**30, 2)


def _video_model(name: str, pipeline, spec, device: torch.device, dtype: torch.dtype, sizes: Sizes) -> VideoModel:
    defaults = ModelDefaults(
        height=64, width=64, num_frames=9, fps=16.0, steps=sizes.steps, guidance=5.0,
        max_text_tokens=sizes.text_tokens, max_height=2048, max_width=2048, max_frames=257,
    )  # fmt: skip
    return VideoModel(name, Path(f"<random {name}>"), spec, pipeline.to(device), defaults, device, dtype)


def measure_generation(model: VideoModel, frames: int, height: int, width: int, steps: int, image: bool) -> dict:
    """Median seconds per denoising step (the first, warm-up step left out) and peak memory."""
    stamps: list[float] = []
    first_frame = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8) if image else None
    settings = GenerationSettings(
        "a red circle moving left on a white background",
        num_frames=frames, height=height, width=width, steps=steps, guidance=5.0, image=first_frame,
    )  # fmt: skip
    _peak_reset(model.device)
    started = time.perf_counter()
    generate(model, settings, progress=lambda done, total: stamps.append(time.perf_counter()))
    per_step = [b - a for a, b in zip(stamps, stamps[1:])] or [stamps[0] - started]
    return {
        "s_per_step": round(statistics.median(per_step), 3),
        "total_s": round(time.perf_counter() - started, 1),
        "peak_gib": _peak_gib(model.device),
        "size": f"{width}x{height}x{frames}",
    }


@contextlib.contextmanager
def single_process_group(device: torch.device):
    """A one-rank process group, as DeepSpeed needs one even on a single device."""
    import deepspeed
    import torch.distributed as dist

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    deepspeed.init_distributed(dist_backend="nccl" if device.type == "cuda" else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def measure_lora(model: VideoModel, frames: int, height: int, width: int, steps: int) -> dict:
    """ZeRO-2 LoRA steps (rank 32) with gradient checkpointing off, then on: s/step and peak memory each."""
    import deepspeed

    params = attach_lora(model, LoraConfig(rank=32), "lora_bench")
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    bf16 = model.device.type == "cuda"
    config = {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "zero_optimization": {"stage": 2},
        "bf16": {"enabled": bf16},
        "gradient_clipping": 1.0,
    }
    engine, *_ = deepspeed.initialize(model=model.denoiser, model_parameters=params, optimizer=optimizer, config=config)
    latent = model.spec.latent_shape(model.pipeline, frames, height, width)
    dtype = torch.bfloat16 if bf16 else torch.float32
    x0 = torch.randn(1, *latent, device=model.device, dtype=dtype)
    text = torch.randn(
        1, model.defaults.max_text_tokens, model.transformer.config.text_dim, device=model.device, dtype=dtype
    )
    results = {}
    for checkpointing in (False, True):
        if checkpointing:
            model.transformer.enable_gradient_checkpointing()
        key = "gc_on" if checkpointing else "gc_off"
        _peak_reset(model.device)
        times = []
        try:
            for _ in range(steps):
                started = time.perf_counter()
                t = torch.rand(1, device=model.device)
                eps = torch.randn_like(x0)
                noisy = (1 - t) * x0 + t * eps
                prediction = model.spec.call_denoiser(engine, noisy, t * 1000, text)
                loss = (prediction.float() - (eps - x0).float()).pow(2).mean()
                engine.backward(loss)
                engine.step()
                if model.device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - started)
            results[key] = {
                "s_per_step": round(statistics.median(times[1:] or times), 3),
                "peak_gib": _peak_gib(model.device),
            }
        except torch.OutOfMemoryError:
            results[key] = {"s_per_step": None, "peak_gib": None, "error": "out of memory"}
            engine.zero_grad()
            torch.cuda.empty_cache()
    model.transformer.disable_gradient_checkpointing()
    unload_adapter(model, "lora_bench")
    return {**results, "size": f"{width}x{height}x{frames}", "rank": 32, "zero_stage": 2}


def measure_hot_switch(model: VideoModel) -> dict:
    """Seconds to load a rank-32 adapter from disk and activate it, and to switch between two loaded ones."""
    with tempfile.TemporaryDirectory() as tmp:
        dirs = []
        for i in range(2):
            attach_lora(model, LoraConfig(rank=32), f"made{i}")
            dirs.append(save_adapter(model, Path(tmp) / f"a{i}", adapter_name=f"made{i}"))
            unload_adapter(model, f"made{i}")
        started = time.perf_counter()
        load_adapter(model, dirs[0], "first")
        activate_adapter(model, "first")
        load_s = time.perf_counter() - started
        load_adapter(model, dirs[1], "second")
        started = time.perf_counter()
        activate_adapter(model, "second")
        switch_s = time.perf_counter() - started
        size = (dirs[0] / "pytorch_lora_weights.safetensors").stat().st_size
        for name in ("first", "second"):
            unload_adapter(model, name)
    return {
        "load_and_activate_s": round(load_s, 3),
        "switch_s": round(switch_s, 4),
        "adapter_mib": round(size / 2**20, 1),
    }


def measure_a14b_expert(device: torch.device, dtype: torch.dtype, sizes: Sizes, smoke: bool) -> dict:
    """One 14B expert of Wan 2.2 I2V-A14B at 480p: a guided denoising step and a rank-32 LoRA step.

    A14B runs one expert per denoising step, so one expert's step is the model's step; this is the
    size the public anchors (14B I2V at 480p) were measured at. The LoRA step trains the expert with
    gradient checkpointing, torch AdamW on the LoRA parameters only, as a fine-tune's worker does.
    """
    from bench.wan_architectures import build_wan_a14b_expert_random

    shrink = dict(num_attention_heads=2, attention_head_dim=8, ffn_dim=32, num_layers=2, text_dim=16, freq_dim=16)
    transformer = build_wan_a14b_expert_random(device, dtype, **(shrink if smoke else {}))
    frames, height, width = sizes.train
    latent = ((frames - 1) // 4 + 1, height // 8, width // 8)  # Wan 2.1 VAE: 4x temporal, 8x spatial
    x = torch.randn(2, transformer.config.in_channels, *latent, device=device, dtype=dtype)  # (2, 36, F', H/8, W/8)
    text = torch.randn(2, sizes.text_tokens, transformer.config.text_dim, device=device, dtype=dtype)  # (2, L, 4096)
    t = torch.full((2,), 900.0, device=device)
    params_b = sum(p.numel() for p in transformer.parameters()) / 1e9

    def timed(step) -> list[float]:
        times = []
        for _ in range(sizes.train_steps + 1):  # the first is a warm-up
            started = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        return times[1:]

    _peak_reset(device)
    with torch.no_grad():  # conditional and unconditional in one batch of 2, as guided sampling runs
        guided = timed(lambda: transformer(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False))
    generation = {"s_per_step": round(statistics.median(guided), 3), "peak_gib": _peak_gib(device)}

    transformer.requires_grad_(False)
    transformer.add_adapter(LoraConfig(rank=32).to_peft(WanSpec.default_lora_targets))
    transformer.enable_gradient_checkpointing()
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)

    def lora_step() -> None:
        prediction = transformer(
            hidden_states=x[:1], timestep=t[:1], encoder_hidden_states=text[:1], return_dict=False
        )[0]
        prediction.float().pow(2).mean().backward()  # (1, 16, F', H/8, W/8): the loss's value does not change the cost
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    _peak_reset(device)
    try:
        lora = {"s_per_step": round(statistics.median(timed(lora_step)), 3), "peak_gib": _peak_gib(device)}
    except torch.OutOfMemoryError:
        lora = {"s_per_step": None, "peak_gib": None, "error": "out of memory"}
    return {
        "params_b": round(params_b, 2),
        "size": f"{width}x{height}x{frames}",
        "guided_step": generation,
        "lora_gc_on": {**lora, "rank": 32, "lora_params_m": round(sum(p.numel() for p in params) / 1e6, 1)},
    }


def build(kind: str, smoke: bool, device: torch.device, dtype: torch.dtype):
    """(pipeline, spec) of the 1.3B or the TI2V-5B, at true size or as a tiny test config."""
    if smoke:
        from reelforge.models.tiny.random_pipeline import TinyWanConfig, build_random_wan_pipeline

        config = TinyWanConfig.for_tests() if kind == "1.3b" else TinyWanConfig.for_tests_ti2v()
        return build_random_wan_pipeline(config).to(device, dtype), (WanSpec() if kind == "1.3b" else WanTI2VSpec())
    from bench.wan_architectures import build_wan_1_3b_random, build_wan_ti2v_5b_random

    if kind == "1.3b":
        return build_wan_1_3b_random(device, dtype), WanSpec()
    return build_wan_ti2v_5b_random(device, dtype), WanTI2VSpec()


def _stage(results: dict, key: str, out: Path, measure) -> None:
    """Run one stage; a failure is recorded under its key, and the results so far are saved either way.

    One stage failing (an out-of-memory, a library mismatch on a new machine) must not lose the
    others' numbers, and a run stopped at its time limit keeps what it measured.
    """
    print(f"[gpu_acceptance] {key} ...", flush=True)
    started = time.perf_counter()
    try:
        results[key] = measure()
    except Exception as exc:  # the bench reports any failure as that stage's result
        logging.exception("stage %s failed", key)
        results[key] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    print(f"[gpu_acceptance] {key} done in {time.perf_counter() - started:.1f}s: {results[key]}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


def main(argv: list[str] | None = None) -> dict:
    """Run every stage and print each result beside its anchor; saves bench-output/gpu_acceptance.json."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny configs on the CPU (checks the script)")
    parser.add_argument("--out", type=Path, default=Path("bench-output/gpu_acceptance.json"))
    parser.add_argument(
        "--stages", default="1.3b,ti2v,a14b", help="which models to measure, comma-separated (default: all three)"
    )
    args = parser.parse_args(argv)
    stages = set(args.stages.split(","))
    if not args.smoke and not torch.cuda.is_available():
        parser.error("no GPU here: run on an H100/H200, or pass --smoke to check the script on the CPU")
    sizes = SMOKE if args.smoke else TRUE
    device = torch.device("cpu" if args.smoke else "cuda")
    dtype = torch.float32 if args.smoke else torch.bfloat16
    results: dict[str, dict] = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu (smoke)",
        "torch": torch.__version__,
    }

    model = None

    def build_1_3b() -> dict:
        nonlocal model
        started = time.perf_counter()
        pipeline, spec = build("1.3b", args.smoke, device, dtype)
        model = _video_model("wan2.1-t2v-1.3b", pipeline, spec, device, dtype, sizes)
        return {"build_s": round(time.perf_counter() - started, 1), "peak_gib": _peak_gib(device)}

    def lora() -> dict:
        with single_process_group(device):
            return measure_lora(model, *sizes.train, sizes.train_steps)

    if "1.3b" in stages:
        _stage(results, "build_1_3b", args.out, build_1_3b)
    if model is not None:
        _stage(
            results, "generate_1_3b", args.out, lambda: measure_generation(model, *sizes.gen_1_3b, sizes.steps, False)
        )
        _stage(results, "adapter_hot_switch", args.out, lambda: measure_hot_switch(model))
        _stage(results, "lora_1_3b", args.out, lora)
        for key in ("gc_off", "gc_on"):
            row = results["lora_1_3b"].get(key, results["lora_1_3b"])
            results[f"lora_1_3b_{key}"] = {**row, "size": results["lora_1_3b"].get("size"), "rank": 32}
    model = None
    if device.type == "cuda":
        torch.cuda.empty_cache()

    def build_ti2v() -> dict:
        nonlocal model
        started = time.perf_counter()
        pipeline, spec = build("ti2v", args.smoke, device, dtype)
        model = _video_model("wan2.2-ti2v-5b", pipeline, spec, device, dtype, sizes)
        return {"build_s": round(time.perf_counter() - started, 1)}

    if "ti2v" in stages:
        _stage(results, "build_ti2v_5b", args.out, build_ti2v)
    if model is not None:
        _stage(
            results, "generate_ti2v_5b", args.out, lambda: measure_generation(model, *sizes.gen_ti2v, sizes.steps, True)
        )
    model = None
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if "a14b" in stages:
        _stage(results, "a14b_expert", args.out, lambda: measure_a14b_expert(device, dtype, sizes, args.smoke))
        if "error" not in results["a14b_expert"]:
            results["a14b_expert_guided_step"] = results["a14b_expert"]["guided_step"]
            results["a14b_expert_lora_gc_on"] = results["a14b_expert"]["lora_gc_on"]

    print(f"\n{'stage':<22} {'s/step':>8} {'peak GiB':>9}  anchor")
    for key, anchor in ANCHORS.items():
        row = results.get(key, {"error": "not run"})
        step = row.get("s_per_step", row.get("load_and_activate_s"))
        shown = step if step is not None else row.get("error", "-")[:40]
        print(f"{key:<22} {shown!s:>8} {row.get('peak_gib') or '-':>9}  {anchor}")
    return save_result(results, args.out)


if __name__ == "__main__":
    main()
