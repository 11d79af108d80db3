"""Wan 2.2 I2V-A14B at true width on a 24 GB CPU machine: both experts, fine-tuned and sampled.

    python -m bench.true_size_a14b                 # every stage, about 10 minutes on 2 cores
    python -m bench.true_size_a14b --layers 4

One A14B expert is 14.3B parameters (28.6 GB in bf16), so the whole model cannot be held here. This
bench keeps every dimension of both experts (width 5120, 40 heads, FFN 13824, 36 input channels,
the embedders and head) and only `--layers` of their 40 blocks, so the two-expert code paths run at
their real tensor shapes: the I2V condition encoded by the true Wan VAE at ingest, the expert draw
per micro-step, ZeRO-3 partitioning and gathering of both experts across two workers, one adapter
file with both experts' LoRA, and sampling that switches expert at the boundary. The adapter's
size is measured and extrapolated to 40 blocks (a LoRA lives only in the blocks, so its size is
linear in their number); the memory figures are for the slice, not for 40 blocks. Stages:

* build: the pipeline (random weights, bf16) saved in diffusers format with small-size defaults
  (64x64x9, 2 steps); UMT5-XXL at its width with 2 of its 24 layers, as in `bench.true_size`;
* generate: image-to-video through `load_model(..., model_path=DIR)`, counting each expert's calls;
* finetune_zero3_2w: `reelforge finetune` on 4 clips, 4 steps, rank 16, both experts, two bf16
  workers at ZeRO-3; then which experts' LoRA trained and the adapter's size, measured and at 40.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.report import save_result
from bench.true_size import (
    TEXT_LAYERS,
    chosen_stages,
    finetune_argv,
    run_stage,
    stage_env,
    summarize_finetune,
    write_footage,
)

STAGES = ("build", "generate", "finetune_zero3_2w")
MODEL = "wan2.2-i2v-a14b"
FULL_LAYERS = 40
BOUNDARY_RATIO = 0.9  # Wan2.2-I2V-A14B-Diffusers model_index.json


def build_model(work: Path, layers: int) -> dict:
    """Both experts at true width with `layers` blocks each, the Wan 2.1 VAE, a 2-layer UMT5-XXL; saved."""
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline
    from transformers import UMT5Config, UMT5EncoderModel

    from bench.wan_architectures import UMT5_XXL, build_wan_a14b_expert_random
    from reelforge.models.tiny.random_pipeline import build_tokenizer

    out = work / MODEL
    tokenizer = build_tokenizer()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # built in bf16 directly, as bench.true_size does
    try:
        cpu = torch.device("cpu")
        high_noise = build_wan_a14b_expert_random(cpu, torch.bfloat16, seed=0, num_layers=layers)
        low_noise = build_wan_a14b_expert_random(cpu, torch.bfloat16, seed=1, num_layers=layers)
        text_encoder = UMT5EncoderModel(
            UMT5Config(vocab_size=len(tokenizer), **{**UMT5_XXL, "num_layers": TEXT_LAYERS})
        ).to(torch.bfloat16)
        vae = AutoencoderKLWan()  # Wan 2.1's VAE, which the A14B models use
    finally:
        torch.set_default_dtype(previous)
    pipeline = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
        transformer=high_noise,
        transformer_2=low_noise,
        boundary_ratio=BOUNDARY_RATIO,
    )
    pipeline.save_pretrained(out, safe_serialization=True)
    defaults = dict(
        height=64, width=64, num_frames=9, fps=16.0, steps=2, guidance=3.5, guidance_2=3.5, max_text_tokens=512,
        max_height=256, max_width=256, max_frames=17, frame_buckets=[9], buckets=[[64, 64]],
    )  # fmt: skip
    (out / "reelforge.json").write_text(json.dumps({"name": MODEL, "defaults": defaults}, indent=2))
    expert_params = sum(p.numel() for p in high_noise.parameters())
    block_params = sum(p.numel() for p in high_noise.blocks[0].parameters())
    return {
        "layers": layers,
        "expert_params_b": round(expert_params / 1e9, 3),
        "expert_params_b_at_40": round((expert_params + (FULL_LAYERS - layers) * block_params) / 1e9, 2),
        "saved_gb": round(sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e9, 2),
    }


def generate_i2v(work: Path) -> dict:
    """Image-to-video through the preset path in bf16; how many denoiser calls each expert took."""
    import time

    import numpy as np
    import torch

    from reelforge.models.loading import load_model
    from reelforge.models.sampling import GenerationSettings, generate
    from reelforge.models.tiny.evaluation import conditioning_frame

    started = time.perf_counter()
    model = load_model(MODEL, model_path=work / MODEL, device="cpu", dtype=torch.bfloat16)
    loaded = time.perf_counter()
    calls = {"transformer": 0, "transformer_2": 0}
    for name in calls:
        expert = getattr(model.pipeline, name)
        expert.register_forward_pre_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    photo = np.kron(conditioning_frame(("red", "square", "left", "black"), 0), np.ones((2, 2, 1), np.uint8))
    video = generate(model, GenerationSettings("a red square moving left", image=photo))  # (64, 64, 3) photo
    return {
        "load_s": round(loaded - started, 1),
        "generate_s": round(time.perf_counter() - loaded, 1),
        "frames": int(video.frames.shape[0]),
        "expert_calls": calls,  # 2 steps, guidance batched into one call each; the first is above the boundary
    }


def inspect_adapter(result: dict, layers: int) -> dict:
    """Which experts' LoRA trained, and the adapter's size now and with 40 blocks per expert."""
    from safetensors.torch import load_file

    adapter = Path(result["adapter_dir"]) / "pytorch_lora_weights.safetensors"
    weights = load_file(str(adapter))
    trained = sorted(
        {key.split(".", 1)[0] for key, value in weights.items() if "lora_B" in key and value.abs().max() > 0}
    )
    in_blocks = sum(v.numel() * v.element_size() for k, v in weights.items() if ".blocks." in k)
    outside = sum(v.numel() * v.element_size() for k, v in weights.items() if ".blocks." not in k)
    return {
        "experts_in_file": sorted({key.split(".", 1)[0] for key in weights}),
        "experts_trained": trained,
        "adapter_params_m": round(sum(v.numel() for v in weights.values()) / 1e6, 2),
        "adapter_mib_at_40": round((outside + in_blocks * FULL_LAYERS / layers) / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the chosen stages in order and save bench-output/true_size_a14b.json."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path("runs/true-size-a14b"))
    parser.add_argument("--layers", type=int, default=2, help="blocks per expert (the real model has 40)")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {', '.join(STAGES)}")
    parser.add_argument("--out", type=Path, default=Path("bench-output/true_size_a14b.json"))
    parser.add_argument("--in-process", choices=("build", "generate"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 1 <= args.layers <= FULL_LAYERS:
        parser.error(f"--layers must be 1-{FULL_LAYERS}")
    work = args.work_dir.resolve()
    if args.in_process:  # a stage's own child process: print its JSON result last
        result = build_model(work, args.layers) if args.in_process == "build" else generate_i2v(work)
        print(json.dumps(result))
        return {}
    stages = chosen_stages(parser, args.stages, STAGES)
    work.mkdir(parents=True, exist_ok=True)
    env = stage_env(work)
    results = {"layers_per_expert": args.layers}
    footage = write_footage(work / "footage")
    me = [sys.executable, "-m", "bench.true_size_a14b", "--work-dir", str(work), "--layers", str(args.layers)]
    for stage in stages:
        print(f"[true_size_a14b] {stage} ...", flush=True)
        log = work / f"{stage}.log"
        if stage in ("build", "generate"):
            result = run_stage([*me, "--in-process", stage], env, log)
        else:
            argv_ = finetune_argv(work, footage, workers=2, zero_stage=3, precision="bf16", model=MODEL, steps=4)
            result = run_stage(argv_, env, log)
            runs = result.get("runs") or []
            adapter = inspect_adapter(runs[0], args.layers) if runs else {}
            result = {**summarize_finetune(result), **adapter}
        results[stage] = result
        print(f"[true_size_a14b] {stage}: {result}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return save_result(results, args.out)


if __name__ == "__main__":
    main()
