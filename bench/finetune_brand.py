"""The fine-tune acceptance run: one brand look, default config, 2 workers, ZeRO-2, on this machine.

    python -m bench.finetune_brand [--clips 40] [--brand lower-third:orange] [--set key=value ...]

Writes shapes-world footage with the look, runs `reelforge finetune` with the default config, then
evaluates base and adapter with `reelforge eval`'s protocol (48 held-out prompts x 2 seeds) side by
side in this process. Reports wall time, brand rate and adherence of both and the adherence drop.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.report import save_result
from reelforge.jobs.finetune import run_finetune
from reelforge.jobs.finetune_config import build_config
from reelforge.models.loading import load_model
from reelforge.models.lora import activate_adapter, load_adapter
from reelforge.models.tiny.brand_looks import parse_brand
from reelforge.models.tiny.evaluation import EvalConfig, evaluate
from reelforge.models.tiny.footage import write_footage
from reelforge.settings import Settings


def main(argv: list[str] | None = None) -> dict:
    """Run the fine-tune and the base/adapter evaluation; print and save the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--brand", default="lower-third:orange")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--home", type=Path, default=None, help="reelforge home (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=Path("bench-output/finetune_brand.json"))
    args = parser.parse_args(argv)
    home = args.home or Path(tempfile.mkdtemp(prefix="reelforge-bench-"))
    brand = parse_brand(args.brand)
    footage = home / "footage"
    write_footage(footage, count=args.clips, seed=1, brand=brand, progress=True)
    settings = Settings(home=home)
    config = build_config({"tenant": "acme", "data": str(footage)}, args.overrides)
    started = time.perf_counter()
    result = run_finetune(config, settings, progress=True)
    finetune_seconds = time.perf_counter() - started

    model = load_model("reelforge-tiny", device="cpu")
    load_adapter(model, result.adapter_dir, "acme")
    metrics = {}
    for name in (None, "acme"):
        activate_adapter(model, name)
        metrics["adapter" if name else "base"] = evaluate(model, EvalConfig(), brand=brand, progress=True)
    base, tuned = metrics["base"], metrics["adapter"]
    return save_result(
        {
            "bench": "finetune_brand",
            "clips": args.clips,
            "brand": brand.spec,
            "workers": config.workers,
            "zero_stage": config.deepspeed.zero_stage,
            "steps": result.metrics.get("step"),
            "finetune_seconds": round(finetune_seconds, 1),
            "base": {"brand_rate": base["brand_rate"], "adherence": base["adherence"]},
            "adapter": {"brand_rate": tuned["brand_rate"], "adherence": tuned["adherence"]},
            "adherence_drop": round(base["adherence"] - tuned["adherence"], 4),
            "in_training_final": {k: v for k, v in result.metrics.items() if k.startswith("eval_")},
            "run_id": result.run_id,
            "registered": f"{result.registered_model}/{result.version}",
        },
        args.out,
    )


if __name__ == "__main__":
    main()
