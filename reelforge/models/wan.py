"""Wan text-to-video (diffusers format): Wan 2.1 T2V, and Wan 2.2 T2V-A14B with its two experts.

`WanSpec` also holds what every Wan family shares (UMT5 text, the causal VAE and its latent
normalisation, flow matching, experts); the image-to-video families subclass it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan, DiffusionPipeline, WanImageToVideoPipeline, WanPipeline

from reelforge.models.experts import EXPERT_COMPONENTS, ExpertRouter
from reelforge.models.objectives import FlowMatchingObjective
from reelforge.models.spec import ModelDefaults, VideoModelSpec

PIPELINE_CLASSES = {"WanPipeline": WanPipeline, "WanImageToVideoPipeline": WanImageToVideoPipeline}


def read_model_index(path: Path) -> dict:
    """The directory's model_index.json."""
    return json.loads((path / "model_index.json").read_text())


class WanSpec(VideoModelSpec):
    """Wan T2V: UMT5 text states, causal 3D VAE (4x temporal), flow-matching DiT, one or two experts."""

    architecture = "wan"
    pipeline_class_names = ("WanPipeline",)
    # Self-attention and feed-forward of every block, cross-attention (prompt following) left frozen:
    # a brand look is prompt-independent. On reelforge-tiny, 600 steps on 40 branded clips reached
    # brand rate 0.92 with adherence unchanged; adding cross-attention (finetrainers' and
    # musubi-tuner's default) reached 0.19 at step 200 while adherence fell by 0.10.
    default_lora_targets = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "ffn.net.0.proj", "ffn.net.2")
    default_defaults = ModelDefaults(
        height=480, width=832, num_frames=81, fps=16.0, steps=50, guidance=5.0, max_text_tokens=512
    )

    @classmethod
    def matches(cls, model_index: dict) -> bool:
        return model_index.get("_class_name") in cls.pipeline_class_names and not model_index.get("expand_timesteps")

    def load_pipeline(self, path: Path, dtype: torch.dtype, with_denoiser: bool = True) -> DiffusionPipeline:
        index = read_model_index(path)
        pipeline_class = PIPELINE_CLASSES[index["_class_name"]]
        # The Wan VAE loses detail in reduced precision; keep it in fp32 as the model card advises.
        vae = AutoencoderKLWan.from_pretrained(str(path), subfolder="vae", dtype=torch.float32, local_files_only=True)
        left_out = {} if with_denoiser else {name: None for name in EXPERT_COMPONENTS if name in index}
        pipeline = pipeline_class.from_pretrained(str(path), vae=vae, dtype=dtype, local_files_only=True, **left_out)
        pipeline.set_progress_bar_config(disable=True)
        return pipeline

    def experts(self, pipeline: DiffusionPipeline) -> dict[str, torch.nn.Module]:
        found = {name: getattr(pipeline, name, None) for name in EXPERT_COMPONENTS}
        return {name: module for name, module in found.items() if module is not None}

    def boundary(self, pipeline: DiffusionPipeline) -> float | None:
        # diffusers: boundary_ratio * num_train_timesteps; t >= boundary runs the high-noise expert.
        ratio = pipeline.config.get("boundary_ratio")
        if ratio is None or getattr(pipeline, "transformer_2", None) is None:
            return None
        return float(ratio) * int(pipeline.scheduler.config.num_train_timesteps)

    def denoiser(self, pipeline: DiffusionPipeline) -> torch.nn.Module:
        boundary = self.boundary(pipeline)
        if boundary is None:
            return pipeline.transformer
        return ExpertRouter(pipeline.transformer, pipeline.transformer_2, boundary)

    def encode_text(self, pipeline: DiffusionPipeline, prompts: list[str], max_tokens: int) -> torch.Tensor:
        # WanPipeline's T5 encoding for every Wan pipeline class: WanImageToVideoPipeline's copy calls
        # ftfy without checking that it is installed (diffusers 0.42).
        states = WanPipeline._get_t5_prompt_embeds(
            pipeline, prompt=prompts, max_sequence_length=max_tokens, device=pipeline.text_encoder.device
        )
        # In the transformer's dtype when it is loaded (ingest loads only the encoders).
        dtype = (pipeline.transformer if pipeline.transformer is not None else pipeline.text_encoder).dtype
        return states.to(dtype)  # (B, L, D)

    def _latent_stats(self, pipeline: DiffusionPipeline, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        config = pipeline.vae.config
        shape = (1, config.z_dim, 1, 1, 1)
        mean = torch.tensor(config.latents_mean, device=like.device, dtype=like.dtype).view(shape)
        std = torch.tensor(config.latents_std, device=like.device, dtype=like.dtype).view(shape)
        return mean, std

    def encode_video(
        self, pipeline: DiffusionPipeline, pixels: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        vae = pipeline.vae
        posterior = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist
        z = posterior.sample(generator) if generator is not None else posterior.mode()  # (B, C, F', H', W')
        mean, std = self._latent_stats(pipeline, z)
        return (z - mean) / std

    def decode_latents(self, pipeline: DiffusionPipeline, latents: torch.Tensor) -> torch.Tensor:
        vae = pipeline.vae
        z = latents.to(vae.device, vae.dtype)
        mean, std = self._latent_stats(pipeline, z)
        return vae.decode(z * std + mean, return_dict=False)[0].clamp(-1.0, 1.0)  # (B, 3, F, H, W)

    def model_inputs(
        self,
        denoiser: torch.nn.Module,
        noisy: torch.Tensor,
        model_timesteps: torch.Tensor,
        condition: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden states, timesteps) the transformer takes; text-to-video passes them through."""
        return noisy, model_timesteps

    def predict(
        self,
        denoiser: torch.nn.Module,
        noisy: torch.Tensor,
        model_timesteps: torch.Tensor,
        text_states: torch.Tensor,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        hidden, timesteps = self.model_inputs(denoiser, noisy, model_timesteps, condition)
        return self.call_denoiser(denoiser, hidden, timesteps, text_states)

    def call_denoiser(
        self, denoiser: torch.nn.Module, hidden: torch.Tensor, timesteps: torch.Tensor, text_states: torch.Tensor
    ) -> torch.Tensor:
        # Both in the denoiser's dtype: a fine-tune's cached text states are fp32, its transformer bf16.
        return denoiser(
            hidden_states=hidden.to(denoiser.dtype),
            timestep=timesteps,
            encoder_hidden_states=text_states.to(denoiser.dtype),
            return_dict=False,
        )[0]  # (B, C, F', H', W')

    def objective(self, pipeline: DiffusionPipeline) -> FlowMatchingObjective:
        config = pipeline.scheduler.config
        # FlowMatchEuler stores `shift`, UniPC (the official Wan repos) stores `flow_shift`.
        shift = float(config.get("flow_shift") or config.get("shift") or 1.0)
        return FlowMatchingObjective(
            sampling="logit_normal", shift=shift, num_train_timesteps=int(config.num_train_timesteps)
        )

    def latent_shape(
        self, pipeline: DiffusionPipeline, num_frames: int, height: int, width: int
    ) -> tuple[int, int, int, int]:
        vae = pipeline.vae.config
        return (
            int(vae.z_dim),  # the noise's channels; an I2V transformer also takes condition channels
            (num_frames - 1) // int(vae.scale_factor_temporal) + 1,
            height // int(vae.scale_factor_spatial),
            width // int(vae.scale_factor_spatial),
        )

    def frame_count_error(self, pipeline: DiffusionPipeline, num_frames: int) -> str | None:
        k = int(pipeline.vae.config.scale_factor_temporal)
        if num_frames >= 1 and (num_frames - 1) % k == 0:
            return None
        below = max(1, (max(num_frames, 1) - 1) // k * k + 1)
        return f"frame count must be {k}k+1 (the causal VAE encodes 1 + {k}k frames), e.g. {below} or {below + k}"

    def size_multiple(self, pipeline: DiffusionPipeline) -> int:
        return int(pipeline.vae.config.scale_factor_spatial) * int(pipeline.transformer.config.patch_size[1])
