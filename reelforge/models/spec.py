"""The model-spec interface: what trainer and server may ask of a video model family.

A spec keeps architecture specifics (text encoding, VAE latents and their normalisation, how the
transformer takes a timestep, the objective, LoRA targets, the frame-count rule) out of the
trainer and the server, which only ever talk to `VideoModelSpec`. Adding CogVideoX or LTX-Video
is one new file implementing this class plus one `register_spec` line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import ClassVar

import torch
from diffusers import DiffusionPipeline

from reelforge.models.objectives import Objective


@dataclass(frozen=True)
class ModelDefaults:
    """Generation defaults of one model: what a request gets when it names nothing."""

    height: int
    width: int
    num_frames: int
    fps: float
    steps: int
    guidance: float
    max_text_tokens: int
    guidance_2: float | None = None  # two-expert models: the low-noise expert's scale (None: `guidance`)
    negative_prompt: str = ""
    max_height: int = 1280
    max_width: int = 1280
    max_frames: int = 257
    # (width, height) resolutions footage is bucketed into for training; empty: just the default size.
    buckets: tuple[tuple[int, int], ...] = ()
    # Shorter clip lengths a shot too short for `num_frames` is cut to, so short shots still count.
    frame_buckets: tuple[int, ...] = ()

    @property
    def training_buckets(self) -> list[tuple[int, int]]:
        """The buckets, or the default size alone."""
        return [tuple(b) for b in self.buckets] or [(self.width, self.height)]

    @property
    def training_frame_counts(self) -> tuple[int, ...]:
        """Clip lengths for training, longest (the default frame count) first."""
        return tuple(sorted({self.num_frames, *(n for n in self.frame_buckets if n <= self.num_frames)}, reverse=True))

    @classmethod
    def from_dict(cls, data: dict) -> ModelDefaults:
        """Build from a `reelforge.json` block, ignoring keys this version does not know."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class ImageInput(str, Enum):
    """Whether a family takes a first-frame image."""

    NONE = "none"  # text-to-video only
    OPTIONAL = "optional"  # text-to-video, or image-to-video when given an image (Wan 2.2 TI2V)
    REQUIRED = "required"  # image-to-video only (Wan 2.2 I2V-A14B)


class VideoModelSpec(ABC):
    """Architecture knowledge of one video family, over a loaded diffusers pipeline."""

    architecture: ClassVar[str]
    pipeline_class_names: ClassVar[tuple[str, ...]]
    default_lora_targets: ClassVar[tuple[str, ...]]
    default_defaults: ClassVar[ModelDefaults]
    image_input: ClassVar[ImageInput] = ImageInput.NONE
    # Whether ingest stores `encode_clip_condition` per clip (part of the ingest cache key).
    caches_clip_condition: ClassVar[bool] = False

    @classmethod
    def matches(cls, model_index: dict) -> bool:
        """Whether a directory with this `model_index.json` belongs to the family."""
        return model_index.get("_class_name") in cls.pipeline_class_names

    def experts(self, pipeline: DiffusionPipeline) -> dict[str, torch.nn.Module]:
        """The denoising transformers by pipeline component name, high-noise expert first."""
        return {"transformer": pipeline.transformer}

    def boundary(self, pipeline: DiffusionPipeline) -> float | None:
        """The timestep (transformer units) where a two-expert model switches experts; None for one expert."""
        return None

    def denoiser(self, pipeline: DiffusionPipeline) -> torch.nn.Module:
        """The module that denoises at any timestep: what the trainer wraps and the sampler calls."""
        return pipeline.transformer

    def encode_image(self, pipeline: DiffusionPipeline, image: torch.Tensor, num_frames: int) -> torch.Tensor:
        """A first frame (B, 3, H, W) in [-1, 1] -> the conditioning latent this family consumes."""
        raise NotImplementedError(f"{self.architecture} models take no image")

    def encode_clip_condition(self, pipeline: DiffusionPipeline, pixels: torch.Tensor) -> torch.Tensor | None:
        """What ingest caches per training clip (B, 3, F, H, W) beside its latent for image-conditioned
        training; None where the condition is part of the clip's own latent (or there is none)."""
        return None

    def training_inputs(
        self,
        denoiser: torch.nn.Module,
        noisy: torch.Tensor,
        x0: torch.Tensor,
        model_timesteps: torch.Tensor,
        conditioned: torch.Tensor,
        clip_condition: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(hidden states, timesteps, loss mask or None) for a batch whose `conditioned` (B,) samples keep
        their first frame (`clip_condition`: the batch's cached `encode_clip_condition`, where the family
        has one); text-to-video families pass the noisy latent through."""
        if bool(conditioned.any()):
            raise ValueError(f"{self.architecture} models take no image")
        return noisy, model_timesteps, None

    def finish_latents(self, latents: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        """The sampled latent as it is decoded (a given first frame is put back exactly)."""
        return latents

    @abstractmethod
    def load_pipeline(self, path: Path, dtype: torch.dtype, with_denoiser: bool = True) -> DiffusionPipeline:
        """Load the diffusers-format directory at `path` (offline; never downloads).

        `with_denoiser=False` leaves the transformer(s) out: what encoding footage needs (VAE and text
        encoder), without the 14B expert(s) that dwarf them.
        """

    @abstractmethod
    def encode_text(self, pipeline: DiffusionPipeline, prompts: list[str], max_tokens: int) -> torch.Tensor:
        """Prompts -> text-encoder states (B, L, D) in the transformer's dtype."""

    @abstractmethod
    def encode_video(
        self,
        pipeline: DiffusionPipeline,
        pixels: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Pixels (B, 3, F, H, W) in [-1, 1] -> normalised latents (B, C, F', H', W').

        With a generator the posterior is sampled; without one its mode is used.
        """

    @abstractmethod
    def decode_latents(self, pipeline: DiffusionPipeline, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, C, F', H', W') -> pixels (B, 3, F, H, W) in [-1, 1]."""

    @abstractmethod
    def predict(
        self,
        denoiser: torch.nn.Module,
        noisy: torch.Tensor,
        model_timesteps: torch.Tensor,
        text_states: torch.Tensor,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One denoiser call: noisy latents (B, C, F', H', W'), timesteps (B,), text (B, L, D), image condition."""

    @abstractmethod
    def call_denoiser(
        self, denoiser: torch.nn.Module, hidden: torch.Tensor, timesteps: torch.Tensor, text_states: torch.Tensor
    ) -> torch.Tensor:
        """The transformer on inputs already composed (`training_inputs`): the prediction (B, C, F', H', W')."""

    @abstractmethod
    def objective(self, pipeline: DiffusionPipeline) -> Objective:
        """The training objective that matches the pipeline's scheduler."""

    @abstractmethod
    def latent_shape(
        self, pipeline: DiffusionPipeline, num_frames: int, height: int, width: int
    ) -> tuple[int, int, int, int]:
        """(C, F', H', W') of the latent of a video with these pixel dimensions."""

    @abstractmethod
    def frame_count_error(self, pipeline: DiffusionPipeline, num_frames: int) -> str | None:
        """None if the model can produce `num_frames`, else what it can produce instead."""

    @abstractmethod
    def size_multiple(self, pipeline: DiffusionPipeline) -> int:
        """Height and width must be multiples of this (VAE downsampling x patch size)."""
