"""Convert a diffusers-format Wan LoRA to the original-Wan / ComfyUI key layout.

ComfyUI and the official Wan code name modules `blocks.N.self_attn.q`, `cross_attn.o`, `ffn.0`,
`head.head` and expect `lora_down` / `lora_up` pairs plus an `alpha` scalar per module, all under
`diffusion_model.`. diffusers reads this layout back (`load_lora_weights` converts it), which is
how the conversion is tested.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from reelforge.errors import AdapterError
from reelforge.models.lora import LORA_WEIGHTS_FILE, read_adapter_card

COMFYUI_FILE = "comfyui_lora.safetensors"

_MODULE_NAMES = {
    "attn1.to_q": "self_attn.q",
    "attn1.to_k": "self_attn.k",
    "attn1.to_v": "self_attn.v",
    "attn1.to_out.0": "self_attn.o",
    "attn2.to_q": "cross_attn.q",
    "attn2.to_k": "cross_attn.k",
    "attn2.to_v": "cross_attn.v",
    "attn2.to_out.0": "cross_attn.o",
    "ffn.net.0.proj": "ffn.0",
    "ffn.net.2": "ffn.2",
}
_KEY = re.compile(r"^(?:transformer\.)?(?P<module>.+)\.lora_(?P<side>[AB])\.weight$")


def comfyui_module_name(diffusers_module: str) -> str:
    """`blocks.3.attn1.to_q` -> `blocks.3.self_attn.q`; `proj_out` -> `head.head`."""
    if diffusers_module == "proj_out":
        return "head.head"
    match = re.match(r"^blocks\.(\d+)\.(.+)$", diffusers_module)
    if match and match.group(2) in _MODULE_NAMES:
        return f"blocks.{match.group(1)}.{_MODULE_NAMES[match.group(2)]}"
    raise AdapterError(f"LoRA module {diffusers_module!r} has no ComfyUI / original-Wan equivalent")


def to_comfyui(state_dict: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """diffusers LoRA tensors -> `diffusion_model.<module>.lora_down/lora_up.weight` + `.alpha`."""
    converted: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        match = _KEY.match(key)
        if match is None:
            raise AdapterError(f"unexpected tensor {key!r} in a diffusers LoRA")
        module = "diffusion_model." + comfyui_module_name(match.group("module"))
        side = "lora_down" if match.group("side") == "A" else "lora_up"
        converted[f"{module}.{side}.weight"] = tensor.contiguous()
        converted[f"{module}.alpha"] = torch.tensor(float(alpha))
    return converted


def write_comfyui_lora(adapter_dir: Path, out_dir: Path) -> Path:
    """Write `out_dir/comfyui_lora.safetensors` from the adapter saved in `adapter_dir`.

    A two-expert (Wan 2.2 A14B) adapter becomes two files, `comfyui_lora_high_noise.safetensors` and
    `comfyui_lora_low_noise.safetensors`, one per expert model as ComfyUI loads them; the first is returned.
    """
    card = read_adapter_card(adapter_dir)
    if card is None:
        raise AdapterError(f"{adapter_dir} has no reelforge adapter card; its alpha is unknown")
    if not card.architecture.startswith("wan"):
        raise AdapterError(f"ComfyUI conversion supports Wan adapters; {adapter_dir} is {card.architecture}")
    tensors = load_file(str(adapter_dir / LORA_WEIGHTS_FILE))
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = {"transformer": COMFYUI_FILE}
    if len(card.experts) > 1:
        parts = {
            "transformer": "comfyui_lora_high_noise.safetensors",
            "transformer_2": "comfyui_lora_low_noise.safetensors",
        }
    written = []
    for component, file_name in parts.items():
        mine = {k.removeprefix(f"{component}."): v for k, v in tensors.items() if k.startswith(f"{component}.")}
        if not mine:
            continue
        path = out_dir / file_name
        save_file(
            to_comfyui(mine, card.alpha),
            str(path),
            metadata={
                "format": "comfyui-wan-lora",
                "base_model": card.base_model,
                "rank": str(card.rank),
                "alpha": str(card.alpha),
                "expert": component,
            },
        )
        written.append(path)
    return written[0]
