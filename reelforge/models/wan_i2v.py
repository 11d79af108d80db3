"""Wan 2.2 I2V-A14B: image-to-video with two experts, the image as concatenated condition channels.

The transformer takes 16 noise channels, 4 mask channels and the 16-channel latent of the image
followed by black frames (`concat_condition`). Wan 2.1 I2V also feeds CLIP image embeddings to
an extra cross-attention; that variant is refused at load time rather than run without them.
Fine-tuning reads each clip's condition from the ingest cache (`encode_clip_condition`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import DiffusionPipeline

from reelforge.errors import UnknownModelError
from reelforge.models.image_conditioning import concat_condition, first_frame_video
from reelforge.models.spec import ImageInput, ModelDefaults
from reelforge.models.wan import WanSpec, read_model_index


class WanI2VSpec(WanSpec):
    """Wan 2.2 I2V: `WanSpec` plus a first frame given as mask and latent channels."""

    architecture = "wan-i2v"
    pipeline_class_names = ("WanImageToVideoPipeline",)
    image_input = ImageInput.REQUIRED
    caches_clip_condition = True
    default_defaults = ModelDefaults(
        height=720, width=1280, num_frames=81, fps=16.0, steps=40, guidance=3.5, max_text_tokens=512
    )

    def load_pipeline(self, path: Path, dtype: torch.dtype, with_denoiser: bool = True) -> DiffusionPipeline:
        if (read_model_index(path).get("image_encoder") or [None])[0] is not None:
            raise UnknownModelError(
                f"{path} is a Wan 2.1 image-to-video model (it has a CLIP image encoder); reelforge runs "
                "Wan 2.2 I2V-A14B and TI2V-5B for image-to-video"
            )
        return super().load_pipeline(path, dtype, with_denoiser)

    def encode_image(self, pipeline: DiffusionPipeline, image: torch.Tensor, num_frames: int) -> torch.Tensor:
        latent = self.encode_video(pipeline, first_frame_video(image, num_frames))  # (B, C, F', H', W')
        return concat_condition(latent, int(pipeline.vae.config.scale_factor_temporal))  # (B, k + C, F', H', W')

    def encode_clip_condition(self, pipeline: DiffusionPipeline, pixels: torch.Tensor) -> torch.Tensor:
        # The latent of [first frame, black...] is its own encoding (the causal VAE carries frame 0's
        # features into the black frames' latents), not a slice of the clip's: ingest caches it.
        return self.encode_image(pipeline, pixels[:, :, 0], pixels.shape[2])  # (B, k + C, F', H', W')

    def training_inputs(
        self,
        denoiser: torch.nn.Module,
        noisy: torch.Tensor,
        x0: torch.Tensor,
        model_timesteps: torch.Tensor,
        conditioned: torch.Tensor,
        clip_condition: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        # Every sample takes its first frame: the model has no image-free mode to train. The loss
        # covers every latent frame, as the model predicts all of them (the image is a side input).
        if not bool(conditioned.all()):
            raise ValueError(f"{self.architecture} models train on image-conditioned samples only")
        if clip_condition is None:
            raise ValueError(
                f"{self.architecture} training needs each clip's cached first-frame condition; "
                "ingest the footage again with this version"
            )
        hidden, timesteps = self.model_inputs(denoiser, noisy, model_timesteps, clip_condition)
        return hidden, timesteps, None

    def model_inputs(
        self,
        denoiser: torch.nn.Module,
        noisy: torch.Tensor,
        model_timesteps: torch.Tensor,
        condition: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if condition is None:
            raise ValueError(f"{self.architecture} needs a first-frame image")
        return torch.cat([noisy, condition.to(noisy.dtype)], dim=1), model_timesteps  # (B, C + k + C, F', H', W')
