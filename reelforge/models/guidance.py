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


def guidance_at(timestep: float, boundary: float | None, scale: float, low_noise_scale: float | None) -> float:
    """The guidance scale at `timestep` of a two-expert model (Wan 2.2 A14B's `guidance_scale_2`).

    At or above the boundary the high-noise expert lays out the video with `scale`; below it the
    low-noise expert refines details with `low_noise_scale`. One expert, or no second scale: `scale`.
    """
    if boundary is None or low_noise_scale is None or timestep >= boundary:
        return scale
    return low_noise_scale


def needs_unconditional(scale: float) -> bool:
    """Guidance at scale 1 equals the conditional prediction, so the unconditional pass is skipped."""
    return scale != 1.0
