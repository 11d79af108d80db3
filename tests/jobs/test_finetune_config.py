"""FineTuneConfig: defaults, YAML + --set layering, sweeps, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reelforge.jobs.deepspeed_config import base_weights_dtype, deepspeed_config, resolve_precision
from reelforge.jobs.finetune_config import (
    FineTuneConfigError,
    build_config,
    expand_sweep,
    known_keys,
    read_config_file,
)
from reelforge.models.spec import ImageInput

BASE = {"tenant": "acme", "data": "/footage"}


def test_defaults_live_in_one_place_and_derive_batch_and_id():
    config = build_config(BASE)
    assert (config.lora.rank, config.deepspeed.zero_stage, config.workers, config.precision) == (16, 2, 2, "auto")
    assert config.global_batch == config.batch_per_worker * config.grad_accum * config.workers
    assert config.fine_tuned_model_id == "ft:reelforge-tiny:acme:brand"
    assert config.total_steps(train_clips=40) == config.steps


def test_yaml_file_then_set_overrides_win(tmp_path: Path):
    job = tmp_path / "job.yaml"
    job.write_text("lr: 1.0e-4\nlora:\n  rank: 8\n  target_modules: [to_q, to_v]\ndeepspeed:\n  zero_stage: 3\n")
    config = build_config({**read_config_file(job), **BASE}, ["lora.rank=4", "gradient_checkpointing=true", "lr=2e-4"])
    assert config.lora.rank == 4 and config.lora.target_modules == ("to_q", "to_v")
    assert config.deepspeed.zero_stage == 3 and config.gradient_checkpointing is True
    assert config.lr == pytest.approx(2e-4)


def test_epochs_instead_of_steps():
    config = build_config(BASE, ["epochs=2", "batch_per_worker=5", "workers=2"])
    assert config.total_steps(train_clips=40) == 8  # 2 passes over 40 clips at 10 clips per step


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lora.rank=0", "lora.rank: Input should be greater than or equal to 1"),
        ("lora.rnk=8", "unknown key 'lora.rnk'"),
        ("learning_rate=1e-4", "unknown key 'learning_rate'"),
        ("deepspeed.zero_stage=1", "deepspeed.zero_stage"),
        ("precision=fp64", "precision"),
        ("eval_timesteps=[0.5, 1.5]", "strictly between 0 and 1"),
        ("tenant=Acme Corp", "tenant"),
    ],
)
def test_bad_values_name_the_key(override: str, message: str):
    with pytest.raises(FineTuneConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_config(BASE, [override])


def test_set_without_equals_and_missing_data_are_clear():
    with pytest.raises(FineTuneConfigError, match="expected key=value"):
        build_config(BASE, ["lora.rank"])
    with pytest.raises(FineTuneConfigError, match="data is required"):
        build_config({"tenant": "acme"})


def test_config_file_errors_name_the_file(tmp_path: Path):
    with pytest.raises(FineTuneConfigError, match="does not exist"):
        read_config_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(FineTuneConfigError, match=f"{bad}.*mapping"):
        read_config_file(bad)


def test_sweep_is_the_grid_of_its_axes():
    configs = expand_sweep(BASE, ["steps=10"], ["lr=1e-4,3e-4", "lora.rank=8,16"])
    assert sorted((c.lr, c.lora.rank) for c in configs) == [(1e-4, 8), (1e-4, 16), (3e-4, 8), (3e-4, 16)]
    assert {c.steps for c in configs} == {10}
    with pytest.raises(FineTuneConfigError, match="lora.rank"):
        expand_sweep(BASE, [], ["lora.rank=8,0"])  # every point is validated before any run


def test_known_keys_cover_sections():
    keys = known_keys()
    assert {"lora.rank", "deepspeed.zero_stage", "lr", "checkpoint_every"} <= set(keys)


def test_deepspeed_config_follows_the_job():
    config = build_config(
        BASE, ["deepspeed.zero_stage=3", "deepspeed.offload_optimizer=true", "grad_accum=2", "batch_per_worker=3"]
    )
    ds = deepspeed_config(config, "fp32")
    assert ds["zero_optimization"]["stage"] == 3 and ds["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"], ds["train_batch_size"]) == (
        3,
        2,
        12,
    )
    assert not ds["bf16"]["enabled"] and not ds["fp16"]["enabled"]
    assert ds["zero_force_ds_cpu_optimizer"] is False  # torch AdamW: nothing JIT-compiled


def test_precision_auto_resolution():
    assert resolve_precision("auto", use_gpu=False, bf16_supported=True) == "fp32"
    assert resolve_precision("auto", use_gpu=True, bf16_supported=True) == "bf16"
    assert resolve_precision("auto", use_gpu=True, bf16_supported=False) == "fp16"
    assert resolve_precision("fp32", use_gpu=True, bf16_supported=True) == "fp32"


def test_workers_load_the_base_in_the_training_precision():
    # a 14B expert in fp32 is 57 GB before DeepSpeed's cast: bf16 training must never load it so
    assert base_weights_dtype(resolve_precision("auto", use_gpu=True, bf16_supported=True)) == torch.bfloat16
    assert base_weights_dtype(resolve_precision("auto", use_gpu=True, bf16_supported=False)) == torch.float16
    assert base_weights_dtype(resolve_precision("auto", use_gpu=False, bf16_supported=True)) == torch.float32


@pytest.mark.parametrize(
    ("image_input", "unset", "half"),
    [(ImageInput.NONE, 0.0, None), (ImageInput.OPTIONAL, 0.0, 0.5), (ImageInput.REQUIRED, 1.0, None)],
)
def test_image_conditioning_follows_what_the_model_takes(image_input: ImageInput, unset: float, half: float | None):
    assert build_config({"tenant": "acme", "data": "."}).image_conditioning_rate(image_input) == unset
    half_config = build_config({"tenant": "acme", "data": "."}, ["image_conditioning=0.5"])
    if half is None:  # no image to condition on, or no text-only mode to keep
        with pytest.raises(FineTuneConfigError, match="image_conditioning 0.5") as refused:
            half_config.image_conditioning_rate(image_input)
        assert refused.value.param == "image_conditioning"
    else:
        assert half_config.image_conditioning_rate(image_input) == half
