"""ComfyUI / original-Wan LoRA conversion: diffusers reads the converted file back to the same outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from reelforge.errors import AdapterError
from reelforge.jobs.comfyui_lora import (
    comfyui_module_name,
    write_comfyui_lora,
)
from reelforge.models.loading import load_model
from reelforge.models.lora import (
    LORA_WEIGHTS_FILE,
    LoraConfig,
    activate_adapter,
    attach_lora,
    load_adapter,
    save_adapter,
)


def test_module_names_map_to_the_original_wan_layout():
    assert comfyui_module_name("blocks.3.attn1.to_out.0") == "blocks.3.self_attn.o"
    assert comfyui_module_name("blocks.0.attn2.to_k") == "blocks.0.cross_attn.k"
    assert comfyui_module_name("blocks.1.ffn.net.0.proj") == "blocks.1.ffn.0"
    assert comfyui_module_name("proj_out") == "head.head"
    with pytest.raises(AdapterError, match="no ComfyUI"):
        comfyui_module_name("condition_embedder.text_embedder.linear_1")


def test_converted_lora_gives_the_same_transformer_output(tiny_model, tiny_model_dir: Path, tmp_path: Path):
    targets = ("attn1.to_q", "attn1.to_out.0", "attn2.to_v", "ffn.net.0.proj", "ffn.net.2")
    params = attach_lora(tiny_model, LoraConfig(rank=4, alpha=8.0, target_modules=targets))
    torch.manual_seed(0)
    for p in params:
        torch.nn.init.normal_(p, std=0.05)  # a trained-looking adapter: B is no longer zero
    save_adapter(tiny_model, tmp_path / "adapter")
    path = write_comfyui_lora(tmp_path / "adapter", tmp_path / "comfy")
    tensors = load_file(str(path))
    assert all(k.startswith("diffusion_model.blocks.") for k in tensors)
    assert tensors["diffusion_model.blocks.0.self_attn.q.alpha"].item() == 8.0

    fresh = load_model(str(tiny_model_dir), device="cpu")
    load_adapter(fresh, tmp_path / "adapter", "diffusers")
    # A LoRA in the ComfyUI / original-Wan layout loads through load_adapter too (diffusers converts it).
    third_party = tmp_path / "third-party"
    third_party.mkdir()
    (third_party / LORA_WEIGHTS_FILE).write_bytes(path.read_bytes())
    load_adapter(fresh, third_party, "comfyui")
    shape = fresh.spec.latent_shape(fresh.pipeline, 5, 16, 16)
    x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(1))  # (1, C, F, H, W)
    text = fresh.encode_text(["a red circle moving left on a white background"])
    outputs = {}
    for name in ("diffusers", "comfyui", None):
        activate_adapter(fresh, name)
        with torch.no_grad():
            outputs[name] = fresh.spec.predict(fresh.transformer, x, torch.tensor([500.0]), text)
    assert torch.allclose(outputs["diffusers"], outputs["comfyui"], atol=1e-5)
    assert not torch.allclose(outputs["diffusers"], outputs[None], atol=1e-3)  # the adapter does something
