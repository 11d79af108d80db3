"""Classifier-free guidance, as pure functions used by sampling."""

from __future__ import annotations

import torch


def classifier_free_guidance(uncond: torch.Tensor, cond: torch.Tensor, scale: float) -> torch.Tensor:
    """eps_u + s (eps_c - eps_u): s = 1 is the conditional prediction, s = 0 the unconditional."""
    return uncond + scale * (cond - uncond)


def rescale_guidance(guided: torch.Tensor, cond: torch.Tensor, rescale: float) -> torch.Tensor:
    """Lin et al. (2023) std rescale: pull guided predictions back to the conditional's std.

    Large guidance scales inflate the prediction's per-sample std and over-saturate frames;
    rescale = 0 returns `guided` unchanged, rescale = 1 matches the conditional's std exactly.
    """
    if rescale == 0.0:
        return guided
    dims = list(range(1, guided.ndim))
    std_cond = cond.std(dim=dims, keepdim=True)  # (B, 1, 1, 1, 1)
    std_guided = guided.std(dim=dims, keepdim=True)
    rescaled = guided * (std_cond / std_guided.clamp_min(1e-12))
    return rescale * rescaled + (1.0 - rescale) * guided


def needs_unconditional(scale: float) -> bool:
    """Guidance at scale 1 equals the conditional prediction, so the unconditional pass is skipped."""
    return scale != 1.0
