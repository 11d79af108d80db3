"""The model-spec interface: what trainer and server may ask of a video model family.

A spec keeps architecture specifics (text encoding, VAE latents and their normalisation, how the
transformer takes a timestep, the objective, LoRA targets, the frame-count rule) out of the
trainer and the server, which only ever talk to `VideoModelSpec`. Adding CogVideoX or LTX-Video
is one new file implementing this class plus one `register_spec` line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
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


class VideoModelSpec(ABC):
    """Architecture knowledge of one text-to-video family, over a loaded diffusers pipeline."""

    architecture: ClassVar[str]
    pipeline_class_names: ClassVar[tuple[str, ...]]
    default_lora_targets: ClassVar[tuple[str, ...]]
    default_defaults: ClassVar[ModelDefaults]

    @abstractmethod
    def load_pipeline(self, path: Path, dtype: torch.dtype) -> DiffusionPipeline:
        """Load the diffusers-format directory at `path` (offline; never downloads)."""

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
        transformer: torch.nn.Module,
        noisy: torch.Tensor,
        model_timesteps: torch.Tensor,
        text_states: torch.Tensor,
    ) -> torch.Tensor:
        """One transformer call: noisy latents (B, C, F', H', W'), timesteps (B,), text (B, L, D)."""

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
