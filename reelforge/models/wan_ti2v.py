"""Wan 2.2 TI2V-5B: text-to-video and image-to-video in one model, the image as a clean first latent frame.

diffusers runs it as `WanPipeline` / `WanImageToVideoPipeline` with `expand_timesteps=True`: the
transformer takes one timestep per token, 0 on the given first frame. Its VAE compresses 16x16x4
into 48 channels (a 2x2 pixel patchify in front of three 2x downsamplings).
"""

from __future__ import annotations

import torch
from diffusers import DiffusionPipeline

from reelforge.models.image_conditioning import (
    first_frame_mask,
    first_frame_training_inputs,
    token_timesteps,
    with_first_frame,
)
from reelforge.models.spec import ImageInput, ModelDefaults
from reelforge.models.wan import WanSpec


def _unwrapped(module: torch.nn.Module) -> torch.nn.Module:
    """The transformer inside a training wrapper (DeepSpeed's engine keeps it as `.module`)."""
    return getattr(module, "module", module)


class WanTI2VSpec(WanSpec):
    """Wan 2.2 TI2V: `WanSpec` plus first-frame conditioning with per-token timesteps."""

    architecture = "wan-ti2v"
    pipeline_class_names = ("WanPipeline", "WanImageToVideoPipeline")
    image_input = ImageInput.OPTIONAL
    default_defaults = ModelDefaults(
        height=704, width=1280, num_frames=121, fps=24.0, steps=50, guidance=5.0, max_text_tokens=512
    )

    @classmethod
    def matches(cls, model_index: dict) -> bool:
        return model_index.get("_class_name") in cls.pipeline_class_names and bool(model_index.get("expand_timesteps"))

    def encode_image(self, pipeline: DiffusionPipeline, image: torch.Tensor, num_frames: int) -> torch.Tensor:
        # The causal VAE encodes frame 0 alone: the image's latent is the video's first latent frame.
        return self.encode_video(pipeline, image[:, :, None])  # (B, C, 1, H', W')

    def model_inputs(
        self,
        denoiser: torch.nn.Module,
        noisy: torch.Tensor,
        model_timesteps: torch.Tensor,
        condition: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if condition is None:
            return noisy, model_timesteps
        mask = first_frame_mask(noisy)  # (1, 1, F', H', W')
        patch = tuple(_unwrapped(denoiser).config.patch_size)
        return with_first_frame(noisy, condition, mask), token_timesteps(mask, model_timesteps, patch)

    def training_inputs(
        self,
        denoiser: torch.nn.Module,
        noisy: torch.Tensor,
        x0: torch.Tensor,
        model_timesteps: torch.Tensor,
        conditioned: torch.Tensor,
        clip_condition: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if not bool(conditioned.any()):
            return noisy, model_timesteps, None
        patch = tuple(_unwrapped(denoiser).config.patch_size)
        return first_frame_training_inputs(noisy, x0, model_timesteps, conditioned, patch)

    def finish_latents(self, latents: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        return latents if condition is None else with_first_frame(latents, condition, first_frame_mask(latents))
