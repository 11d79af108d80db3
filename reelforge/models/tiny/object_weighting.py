"""Where the object is in latent space, and loss weights that make its tokens count.

The shapes world is mostly flat background: in a plain mean squared error the object's few latent
cells weigh little, so a model can lower its loss by drawing backgrounds well while the object's
shape stays a blob. Weighting the cells the object touches (as the VAE's pixel loss already does)
puts the loss where colour and shape are decided.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def latent_object_coverage(coverage: torch.Tensor, temporal: int, spatial: int) -> torch.Tensor:
    """Pixel coverage (B, F, H, W) in [0, 1] pooled to the causal video VAE's latent grid (B, 1, F', H', W').

    Latent frame 0 covers pixel frame 0 alone and latent frame k pixel frames (k-1)*t+1 .. k*t, as in
    Wan's causal VAE; a latent cell counts as much as the most covered pixel it sees.
    """
    first = coverage[:, :1]  # (B, 1, H, W)
    rest = coverage[:, 1:]  # (B, F - 1, H, W)
    if rest.shape[1] % temporal:
        raise ValueError(f"{coverage.shape[1]} frames is not 1 + a multiple of {temporal}")
    b, _, h, w = coverage.shape
    grouped = rest.reshape(b, -1, temporal, h, w).amax(dim=2)  # (B, F' - 1, H, W)
    frames = torch.cat([first, grouped], dim=1)  # (B, F', H, W)
    return F.max_pool2d(frames, kernel_size=spatial).unsqueeze(1)  # (B, 1, F', H', W')


def object_loss_weights(latent_coverage: torch.Tensor, object_weight: float) -> torch.Tensor:
    """Per latent cell loss weight: 1 on background, 1 + `object_weight` where the object is fully present."""
    if object_weight < 0:
        raise ValueError(f"object_weight {object_weight} must be at least 0")
    return 1.0 + object_weight * latent_coverage.clamp(0.0, 1.0)  # (B, 1, F', H', W')
