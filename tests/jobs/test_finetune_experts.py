"""Two-expert (Wan 2.2 A14B-shaped) fine-tunes on a real Ray cluster: Ray Train + DeepSpeed ZeRO-2.

Tiny random T2V-A14B and I2V-A14B pipelines (two transformers switching at their boundary) are
fine-tuned with the default `lora.experts=all`: one micro-step trains one expert, the same on every
rank, and the adapter file carries both experts' weights, which then load into both experts of a
fresh model. The I2V run trains on each clip's first-frame condition as ingest cached it, and its
held-out loss is scored with the held-out clip's own condition.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from reelforge.jobs.finetune import run_finetune
from reelforge.jobs.finetune_config import build_config
from reelforge.models.experts import HIGH_NOISE, LOW_NOISE, ExpertSchedule
from reelforge.models.loading import load_model
from reelforge.models.lora import LORA_WEIGHTS_FILE, activate_adapter, load_adapter
from reelforge.models.tiny.footage import write_footage
from reelforge.models.tiny.random_pipeline import TinyWanConfig, build_random_wan_pipeline, save_model_dir
from reelforge.settings import Settings

pytestmark = pytest.mark.slow

STEPS = 6
RUN = [
    f"steps={STEPS}",
    f"checkpoint_every={STEPS}",
    f"eval_every={STEPS}",
    "batch_per_worker=1",
    "workers=2",
    "validation_videos=0",
    "world_eval_prompts=0",
    "holdout_fraction=0",
    "warmup_steps=1",
    "lr=0.01",
    "timestep_sampling=uniform",
]


@pytest.mark.parametrize("variant", ["t2v", "i2v"])
def test_a_two_expert_fine_tune_trains_both_experts_into_one_adapter(ray_cluster, tmp_path: Path, variant: str):
    config_tiny = TinyWanConfig.for_tests_a14b() if variant == "t2v" else TinyWanConfig.for_tests_i2v_a14b()
    model_dir = save_model_dir(build_random_wan_pipeline(config_tiny), tmp_path / variant, config_tiny.defaults)
    footage = tmp_path / "footage" / "acme"
    write_footage(footage, count=4, seed=5)
    config = build_config({"tenant": "acme", "data": str(footage), "model": str(model_dir)}, RUN)
    # Precondition: with this seed, the shared expert draw picks each expert at least once.
    base = load_model(str(model_dir), device="cpu")
    objective = base.spec.objective(base.pipeline)
    from reelforge.jobs.train_worker import configured_objective

    objective = configured_objective(objective, config)
    schedule = ExpertSchedule(
        objective.sample_timesteps, config_tiny.boundary_ratio, (HIGH_NOISE, LOW_NOISE), config.seed
    )
    assert {schedule.expert(step) for step in range(STEPS)} == {HIGH_NOISE, LOW_NOISE}

    home = tmp_path / "home"
    result = run_finetune(config, Settings(home=home))

    (shard, *_) = (home / "datasets" / "acme").rglob("shards/*.parquet")
    columns = set(pq.read_schema(shard).names)
    assert ("condition" in columns) == (variant == "i2v")  # only I2V caches a first-frame condition
    weights = load_file(str(result.adapter_dir / LORA_WEIGHTS_FILE))
    assert {key.split(".", 1)[0] for key in weights} == {"transformer", "transformer_2"}
    for expert in ("transformer", "transformer_2"):
        trained = [v for k, v in weights.items() if k.startswith(f"{expert}.") and "lora_B" in k]
        assert any(v.abs().max() > 0 for v in trained), f"{expert}'s LoRA never trained"

    served = load_model(str(model_dir), device="cpu")
    g = torch.Generator().manual_seed(0)
    noisy, text = torch.randn(1, 4, 3, 8, 8, generator=g), served.encode_text(["a red circle"])
    condition = None
    if variant == "i2v":
        with torch.no_grad():
            condition = served.spec.encode_image(served.pipeline, torch.rand(1, 3, 32, 32, generator=g) * 2 - 1, 9)
    high, low = 0.95 * 1000, 0.2 * 1000
    with torch.no_grad():
        before = [served.spec.predict(served.denoiser, noisy, torch.tensor([t]), text, condition) for t in (high, low)]
        load_adapter(served, result.adapter_dir, "acme")
        activate_adapter(served, "acme")
        after = [served.spec.predict(served.denoiser, noisy, torch.tensor([t]), text, condition) for t in (high, low)]
    assert not torch.allclose(before[0], after[0]) and not torch.allclose(before[1], after[1])
