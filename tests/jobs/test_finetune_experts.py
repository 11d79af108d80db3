"""A two-expert (Wan 2.2 A14B-shaped) fine-tune on a real Ray cluster: Ray Train + DeepSpeed ZeRO-2.

A tiny random A14B pipeline (two transformers switching at 0.875) is fine-tuned with the default
`lora.experts=all`: one micro-step trains one expert, the same on every rank, and the adapter file
carries both experts' weights, which then load into both experts of a fresh model.
"""

from __future__ import annotations

from pathlib import Path

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


def test_a_two_expert_fine_tune_trains_both_experts_into_one_adapter(ray_cluster, tmp_path: Path):
    config_tiny = TinyWanConfig.for_tests_a14b()
    model_dir = save_model_dir(build_random_wan_pipeline(config_tiny), tmp_path / "a14b", config_tiny.defaults)
    footage = tmp_path / "footage" / "acme"
    write_footage(footage, count=4, seed=5)
    config = build_config({"tenant": "acme", "data": str(footage), "model": str(model_dir)}, RUN)
    # Precondition: with this seed, the shared expert draw picks each expert at least once.
    base = load_model(str(model_dir), device="cpu")
    objective = base.spec.objective(base.pipeline)
    from reelforge.jobs.train_worker import configured_objective

    objective = configured_objective(objective, config)
    schedule = ExpertSchedule(objective.sample_timesteps, 0.875, (HIGH_NOISE, LOW_NOISE), config.seed)
    assert {schedule.expert(step) for step in range(STEPS)} == {HIGH_NOISE, LOW_NOISE}

    result = run_finetune(config, Settings(home=tmp_path / "home"))

    weights = load_file(str(result.adapter_dir / LORA_WEIGHTS_FILE))
    assert {key.split(".", 1)[0] for key in weights} == {"transformer", "transformer_2"}
    for expert in ("transformer", "transformer_2"):
        trained = [v for k, v in weights.items() if k.startswith(f"{expert}.") and "lora_B" in k]
        assert any(v.abs().max() > 0 for v in trained), f"{expert}'s LoRA never trained"

    served = load_model(str(model_dir), device="cpu")
    g = torch.Generator().manual_seed(0)
    noisy, text = torch.randn(1, 4, 3, 8, 8, generator=g), served.encode_text(["a red circle"])
    with torch.no_grad():
        before = [served.spec.predict(served.denoiser, noisy, torch.tensor([t]), text) for t in (950.0, 200.0)]
        load_adapter(served, result.adapter_dir, "acme")
        activate_adapter(served, "acme")
        after = [served.spec.predict(served.denoiser, noisy, torch.tensor([t]), text) for t in (950.0, 200.0)]
    assert not torch.allclose(before[0], after[0]) and not torch.allclose(before[1], after[1])
