"""Load a model by name: resolve the preset, pick its spec, load the pipeline onto a device."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from diffusers import DiffusionPipeline

from reelforge.errors import UnknownModelError
from reelforge.models.base_fingerprint import base_fingerprint
from reelforge.models.presets import ResolvedModel, read_model_dir_info, resolve_model
from reelforge.models.spec import ModelDefaults, VideoModelSpec
from reelforge.settings import Settings

logger = logging.getLogger(__name__)


def default_device() -> torch.device:
    """The first GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on GPUs that support it, fp32 elsewhere (CPU bf16 is slow and gains nothing here)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


@dataclass
class VideoModel:
    """A loaded text-to-video model: its spec, diffusers pipeline and generation defaults."""

    name: str
    path: Path
    spec: VideoModelSpec
    pipeline: DiffusionPipeline
    defaults: ModelDefaults
    device: torch.device
    dtype: torch.dtype
    # `base_fingerprint` of the experts and VAE as loaded (None when loaded without the denoiser).
    fingerprint: str | None = None

    @property
    def transformer(self) -> torch.nn.Module:
        """The (high-noise, for two-expert models) transformer."""
        return self.pipeline.transformer

    @cached_property
    def denoiser(self) -> torch.nn.Module:
        """What denoises at every timestep: the transformer, or both experts behind one router."""
        return self.spec.denoiser(self.pipeline)

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """Prompts -> text states (B, L, D) with this model's token budget."""
        return self.spec.encode_text(self.pipeline, prompts, self.defaults.max_text_tokens)


@dataclass(frozen=True)
class ModelDescription:
    """What a model is without loading its weights: where it lives, its family and its defaults."""

    name: str
    path: Path
    spec: VideoModelSpec
    defaults: ModelDefaults


def describe_model(
    name: str, settings: Settings | None = None, model_path: str | Path | None = None
) -> ModelDescription:
    """Resolve `name` and read its spec and defaults (reelforge.json > preset > family); no weights load."""
    settings = settings or Settings.from_env()
    resolved: ResolvedModel = resolve_model(name, settings, model_path)
    spec, card_defaults = read_model_dir_info(resolved.path)
    if resolved.preset is not None and spec.architecture != resolved.preset.architecture:
        raise UnknownModelError(
            f"{resolved.path} holds a {spec.architecture} model, but {resolved.name} is a "
            f"{resolved.preset.architecture} model ({resolved.preset.source}); check the path"
        )
    defaults = card_defaults or (resolved.preset.defaults if resolved.preset else None) or spec.default_defaults
    return ModelDescription(resolved.name, resolved.path, spec, defaults)


def load_model(
    name: str,
    settings: Settings | None = None,
    model_path: str | Path | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    with_denoiser: bool = True,
) -> VideoModel:
    """Resolve `name` (preset or directory) and load it; raises typed errors for bad names/paths.

    `with_denoiser=False` loads only the encoders (VAE, text encoder), for encoding footage.
    """
    described = describe_model(name, settings, model_path)
    device = torch.device(device) if device is not None else default_device()
    dtype = dtype or default_dtype(device)
    logger.info(
        "loading %s from %s (%s, %s on %s)", described.name, described.path, described.spec.architecture, dtype, device
    )
    pipeline = described.spec.load_pipeline(described.path, dtype, with_denoiser).to(device)
    fingerprint = None
    if with_denoiser:  # before any adapter is attached: what an adapter trained on this model records
        fingerprint = base_fingerprint({**described.spec.experts(pipeline), "vae": pipeline.vae})
    return VideoModel(
        name=described.name,
        path=described.path,
        spec=described.spec,
        pipeline=pipeline,
        defaults=described.defaults,
        device=device,
        dtype=dtype,
        fingerprint=fingerprint,
    )
