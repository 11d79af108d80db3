"""Which base weights an adapter was trained against: a cheap fingerprint of a loaded checkpoint.

A LoRA is a delta on particular base weights, and what it draws is decoded by a particular VAE. The
same adapter on another checkpoint of the same architecture (a re-trained decoder, a community
fine-tune placed at the same path, a newer release under the old name) loads without any error and
renders another look: reelforge-tiny's sharpened decoder turned a fixture adapter's orange
lower-third yellow. So an adapter's card records the fingerprint of the base it was trained on, and
loading it onto a different one is refused by name.

The fingerprint hashes every parameter's name and shape and a fixed, evenly spaced sample of its
values over the denoising experts and the VAE. Values are rounded to bf16 first, so a bf16 GPU
replica and an fp32 CPU trainer of one checkpoint agree. The text encoder is left out: teaching it
new words (reelforge-tiny's Chinese) changes no adapter's look. Sampling keeps it to a fraction of
a second for a 14B model, yet any fine-tune of the base moves sampled values and so the hash.
"""

from __future__ import annotations

import hashlib

import torch

SAMPLES_PER_TENSOR = 64
PEFT_BASE_LAYER = ".base_layer"  # peft renames a wrapped layer's weight `x.weight` -> `x.base_layer.weight`


def _base_parameters(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The module's own parameters by their pre-LoRA names, sorted: attached adapters do not count."""
    named = [
        (name.replace(PEFT_BASE_LAYER, ""), param) for name, param in module.named_parameters() if "lora_" not in name
    ]
    return sorted(named, key=lambda item: item[0])


@torch.no_grad()
def base_fingerprint(components: dict[str, torch.nn.Module]) -> str:
    """SHA-256 (hex) over each component's parameter names, shapes and bf16-rounded value samples."""
    digest = hashlib.sha256()
    for component in sorted(components):
        for name, param in _base_parameters(components[component]):
            flat = param.detach().reshape(-1)  # (N,)
            count = min(SAMPLES_PER_TENSOR, flat.numel())
            # Integer arithmetic on the CPU: a float linspace may round differently on a GPU.
            index = torch.arange(count) * (flat.numel() - 1) // max(count - 1, 1)  # (count,)
            index = index.to(flat.device)
            sample = flat[index].to(torch.bfloat16).to(torch.float32).cpu()  # (count,)
            digest.update(f"{component}.{name}:{tuple(param.shape)};".encode())
            digest.update(sample.numpy().tobytes())
    return digest.hexdigest()
