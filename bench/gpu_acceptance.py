"""GPU acceptance: seconds per step and peak GPU memory of what a Wan deployment runs, beside public anchors.

    python -m bench.gpu_acceptance            # one H100 or H200, about 10 minutes
    python -m bench.gpu_acceptance --smoke    # tiny configs on the CPU: checks the script itself

Every model is the true architecture with random weights (`bench.wan_architectures`): speed and
memory do not depend on the values of the weights, so nothing is downloaded. Stages:

* generation: Wan 2.1 1.3B at 480x832x81 and Wan 2.2 TI2V-5B at 704x1280x121 from a first frame,
  with classifier-free guidance (two transformer passes per step, batched), through reelforge's
  sampler;
* LoRA training: 1.3B at 480p x 81 frames, rank 32, DeepSpeed ZeRO-2, gradient checkpointing off
  then on (an out-of-memory is reported, not fatal);
* an adapter hot switch: load a rank-32 adapter from disk and make it active.
"""

from __future__ import annotations

import argparse
import contextlib
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
    "generate_ti2v_5b": "diffusers Wan 2.1 I2V-14B at 480p: 9.77 s/step on one H100",
    "lora_1_3b_gc_off": "Wan 14B I2V LoRA: about 10 s/it on one H200",
    "lora_1_3b_gc_on": "Wan 14B I2V LoRA: about 10 s/it on one H200",
    "adapter_hot_switch": "(no public anchor; seconds for load + activate)",
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
    return {
        "load_and_activate_s": round(load_s, 3),
        "switch_s": round(switch_s, 4),
        "adapter_mib": round(size / 2**20, 1),
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


def main(argv: list[str] | None = None) -> dict:
    """Run every stage and print each result beside its anchor; saves bench-output/gpu_acceptance.json."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny configs on the CPU (checks the script)")
    parser.add_argument("--out", type=Path, default=Path("bench-output/gpu_acceptance.json"))
    args = parser.parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        parser.error("no GPU here: run on an H100/H200, or pass --smoke to check the script on the CPU")
    sizes = SMOKE if args.smoke else TRUE
    device = torch.device("cpu" if args.smoke else "cuda")
    dtype = torch.float32 if args.smoke else torch.bfloat16
    results: dict[str, dict] = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu (smoke)"}

    pipeline, spec = build("1.3b", args.smoke, device, dtype)
    model = _video_model("wan2.1-t2v-1.3b", pipeline, spec, device, dtype, sizes)
    results["generate_1_3b"] = measure_generation(model, *sizes.gen_1_3b, sizes.steps, image=False)
    results["adapter_hot_switch"] = measure_hot_switch(model)
    with single_process_group(device):
        lora = measure_lora(model, *sizes.train, sizes.train_steps)
    results["lora_1_3b_gc_off"] = {**lora["gc_off"], "size": lora["size"], "rank": 32}
    results["lora_1_3b_gc_on"] = {**lora["gc_on"], "size": lora["size"], "rank": 32}
    del model, pipeline
    if device.type == "cuda":
        torch.cuda.empty_cache()

    pipeline, spec = build("ti2v", args.smoke, device, dtype)
    model = _video_model("wan2.2-ti2v-5b", pipeline, spec, device, dtype, sizes)
    results["generate_ti2v_5b"] = measure_generation(model, *sizes.gen_ti2v, sizes.steps, image=True)

    print(f"\n{'stage':<22} {'s/step':>8} {'peak GiB':>9}  anchor")
    for key, anchor in ANCHORS.items():
        row = results[key]
        step = row.get("s_per_step", row.get("load_and_activate_s"))
        print(f"{key:<22} {step if step is not None else '-':>8} {row.get('peak_gib') or '-':>9}  {anchor}")
    return save_result(results, args.out)


if __name__ == "__main__":
    main()
