"""Base fingerprints: an adapter records the checkpoint it was trained on and refuses another one.

Tiny random pipelines stand in for real checkpoints: "another checkpoint" is the same architecture
with one decoder weight changed, saved and loaded again, which is what a re-trained decoder or a
community fine-tune at the same path looks like to a loader.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from reelforge.errors import AdapterError
from reelforge.models.base_fingerprint import base_fingerprint
from reelforge.models.loading import VideoModel, load_model
from reelforge.models.lora import (
    ADAPTER_CARD_FILE,
    LoraConfig,
    activate_adapter,
    attach_lora,
    load_adapter,
    loaded_adapters,
    save_adapter,
)


def _components(model: VideoModel) -> dict[str, torch.nn.Module]:
    return {**model.spec.experts(model.pipeline), "vae": model.pipeline.vae}


@pytest.fixture
def retouched_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """The tiny checkpoint with one VAE decoder weight nudged: same architecture, another checkpoint."""
    model = load_model(str(tiny_model_dir), device="cpu")
    with torch.no_grad():
        next(model.pipeline.vae.decoder.parameters()).view(-1)[0] += 0.5
    shutil.copytree(tiny_model_dir, tmp_path / "retouched")
    model.pipeline.vae.save_pretrained(str(tmp_path / "retouched" / "vae"))
    return tmp_path / "retouched"


def _trained_adapter(model_dir: Path, out: Path) -> Path:
    trainer = load_model(str(model_dir), device="cpu")
    attach_lora(trainer, LoraConfig(rank=2))
    return save_adapter(trainer, out)


def test_the_fingerprint_is_stable_across_loads_precisions_and_attached_adapters(tiny_model_dir: Path):
    fp32 = load_model(str(tiny_model_dir), device="cpu")
    bf16 = load_model(str(tiny_model_dir), device="cpu", dtype=torch.bfloat16)
    assert fp32.fingerprint and fp32.fingerprint == bf16.fingerprint  # a bf16 replica of an fp32 trainer's base
    attach_lora(fp32, LoraConfig(rank=2))  # peft renames wrapped weights and adds its own
    assert base_fingerprint(_components(fp32)) == bf16.fingerprint
    assert load_model(str(tiny_model_dir), device="cpu", with_denoiser=False).fingerprint is None


def test_one_changed_decoder_weight_changes_it(tiny_model_dir: Path, retouched_dir: Path):
    base = load_model(str(tiny_model_dir), device="cpu")
    assert load_model(str(retouched_dir), device="cpu").fingerprint != base.fingerprint


def test_an_adapter_loads_on_its_own_base_and_is_refused_on_another(
    tiny_model_dir: Path, retouched_dir: Path, tmp_path: Path
):
    adapter = _trained_adapter(tiny_model_dir, tmp_path / "adapter")
    card = json.loads((adapter / ADAPTER_CARD_FILE).read_text())
    own = load_model(str(tiny_model_dir), device="cpu")
    assert card["base_fingerprint"] == own.fingerprint
    load_adapter(own, adapter, "look")
    activate_adapter(own, "look")

    other = load_model(str(retouched_dir), device="cpu")
    with pytest.raises(AdapterError, match="another checkpoint") as info:
        load_adapter(other, adapter, "look")
    assert card["base_fingerprint"][:12] in str(info.value) and other.fingerprint[:12] in str(info.value)
    assert loaded_adapters(other) == []  # refused before anything was attached


def test_an_adapter_from_before_fingerprints_loads_with_a_warning(
    tiny_model_dir: Path, retouched_dir: Path, tmp_path: Path, caplog
):
    adapter = _trained_adapter(tiny_model_dir, tmp_path / "legacy")
    card = json.loads((adapter / ADAPTER_CARD_FILE).read_text())
    del card["base_fingerprint"]
    (adapter / ADAPTER_CARD_FILE).write_text(json.dumps(card))
    other = load_model(str(retouched_dir), device="cpu")
    with caplog.at_level(logging.WARNING, logger="reelforge.models.lora"):
        load_adapter(other, adapter, "legacy")
    assert loaded_adapters(other) == ["legacy"]
    assert "records no base fingerprint" in caplog.text
