"""Image-to-video conditioning, as pure functions over latents.

Two ways a Wan model takes a first frame:

* First-frame latent (Wan 2.2 TI2V-5B, `expand_timesteps`): the first latent frame *is* the
  image's latent, kept clean. Its tokens get timestep 0, the rest the sampled timestep, and the loss
  covers only the other frames. The causal Wan VAE encodes frame 0 on its own, so a clip's first
  latent frame equals the latent of its first frame: training needs no separate image encoding.
* Channel concatenation (Wan 2.2 I2V-A14B): the transformer sees the noisy latent concatenated
  with a mask (which latent frames are given) and the latent of [image, zeros...], encoded as a
  video of the clip's length.
"""

from __future__ import annotations

import torch


def first_frame_mask(latent: torch.Tensor) -> torch.Tensor:
    """(1, 1, F', H', W') ones with the first latent frame zeroed: 1 where the model denoises."""
    _, _, frames, height, width = latent.shape
    mask = torch.ones(1, 1, frames, height, width, dtype=latent.dtype, device=latent.device)
    mask[:, :, 0] = 0
    return mask


def with_first_frame(latent: torch.Tensor, condition: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Replace the first latent frame of `latent` (B, C, F', H', W') by `condition` (B, C, 1, H', W')."""
    return (1 - mask) * condition.to(latent.dtype) + mask * latent  # (B, C, F', H', W')


def token_timesteps(mask: torch.Tensor, t: torch.Tensor, patch_size: tuple[int, int, int]) -> torch.Tensor:
    """Per-token timesteps (B, seq): `t` (B,) on denoised tokens, 0 on the given first frame.

    Tokens are the transformer's patches in (frame, row, column) order, as WanTransformer3DModel
    flattens them; the mask is constant within a patch, so its top-left value stands for the patch.
    """
    pt, ph, pw = patch_size
    per_token = mask[0, 0, ::pt, ::ph, ::pw].flatten()  # (seq,)
    return per_token[None, :] * t.reshape(-1, 1).to(per_token.dtype)  # (B, seq)


def concat_condition(image_latent: torch.Tensor, temporal_compression: int) -> torch.Tensor:
    """Mask channels + the latent of [image, zeros...] (B, C, F', H', W') -> (B, k + C, F', H', W').

    The mask says which *pixel* frames were given (only frame 0), packed k = temporal_compression
    frames per latent frame the way the causal VAE packs them (frame 0 alone fills the first latent
    frame, so it is repeated k times there).
    """
    batch, _, frames, height, width = image_latent.shape
    k = temporal_compression
    pixel_frames = torch.zeros(batch, 1, 1 + (frames - 1) * k, height, width, device=image_latent.device)
    pixel_frames[:, :, 0] = 1
    first = pixel_frames[:, :, :1].repeat_interleave(k, dim=2)  # (B, 1, k, H', W')
    packed = torch.cat([first, pixel_frames[:, :, 1:]], dim=2)  # (B, 1, F' * k, H', W')
    mask = packed.view(batch, frames, k, height, width).transpose(1, 2)  # (B, k, F', H', W')
    return torch.cat([mask.to(image_latent.dtype), image_latent], dim=1)  # (B, k + C, F', H', W')


def first_frame_video(image: torch.Tensor, num_frames: int) -> torch.Tensor:
    """An image (B, 3, H, W) followed by num_frames - 1 black frames: (B, 3, F, H, W) in [-1, 1]."""
    rest = image.new_zeros(image.shape[0], image.shape[1], num_frames - 1, *image.shape[2:])
    return torch.cat([image[:, :, None], rest], dim=2)


def first_frame_training_inputs(
    noisy: torch.Tensor,
    x0: torch.Tensor,
    model_timesteps: torch.Tensor,
    conditioned: torch.Tensor,
    patch_size: tuple[int, int, int],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The TI2V training objective's inputs for a batch mixing text- and image-to-video samples.

    For samples with `conditioned` (B,) true, the first latent frame is the clean clip's own, its
    tokens get timestep 0 and the loss skips it; the rest train as text-to-video. Returns
    (hidden states (B, C, F', H', W'), per-token timesteps (B, seq), loss mask (B, 1, F', H', W')).
    """
    mask = first_frame_mask(noisy)  # (1, 1, F', H', W')
    rows = conditioned.reshape(-1, 1, 1, 1, 1).to(noisy.dtype)  # (B, 1, 1, 1, 1)
    per_sample_mask = rows * mask + (1 - rows) * torch.ones_like(mask)  # (B, 1, F', H', W')
    hidden = with_first_frame(noisy, x0[:, :, :1], per_sample_mask)
    timesteps = token_timesteps(torch.ones_like(mask), model_timesteps, patch_size)  # (B, seq): all noisy
    given = token_timesteps(mask, model_timesteps, patch_size)  # (B, seq): first frame at 0
    timesteps = torch.where(conditioned.reshape(-1, 1), given, timesteps)
    return hidden, timesteps, per_sample_mask
