"""The Wan model spec on a tiny random Wan: shapes, normalisation, rules the trainer and server rely on."""

from __future__ import annotations

import copy

import pytest
import torch

from reelforge.models.families import spec_for_architecture, spec_for_model_index
from reelforge.models.loading import VideoModel
from reelforge.models.objectives import FlowMatchingObjective
from reelforge.models.wan import WanSpec
from reelforge.models.wan_i2v import WanI2VSpec
from reelforge.models.wan_ti2v import WanTI2VSpec


def test_spec_registry_finds_each_wan_family_by_its_model_index():
    assert isinstance(spec_for_architecture("wan"), WanSpec)
    assert type(spec_for_model_index({"_class_name": "WanPipeline", "expand_timesteps": False})) is WanSpec
    a14b = {"_class_name": "WanPipeline", "boundary_ratio": 0.875, "expand_timesteps": False}
    assert type(spec_for_model_index(a14b)) is WanSpec
    assert type(spec_for_model_index({"_class_name": "WanPipeline", "expand_timesteps": True})) is WanTI2VSpec
    i2v = {"_class_name": "WanImageToVideoPipeline", "boundary_ratio": 0.9, "expand_timesteps": False}
    assert type(spec_for_model_index(i2v)) is WanI2VSpec
    assert spec_for_model_index({"_class_name": "CogVideoXPipeline"}) is None
    with pytest.raises(KeyError, match="known"):
        spec_for_architecture("sora")


def test_latent_shape_matches_the_vae(tiny_model: VideoModel):
    spec, pipe = tiny_model.spec, tiny_model.pipeline
    pixels = torch.rand(2, 3, 9, 32, 32) * 2 - 1  # (B, 3, F, H, W)
    with torch.no_grad():
        latents = spec.encode_video(pipe, pixels)
        decoded = spec.decode_latents(pipe, latents)
    assert latents.shape == (2, *spec.latent_shape(pipe, 9, 32, 32))
    assert latents.shape == (2, 4, 3, 8, 8)
    assert decoded.shape == pixels.shape
    assert decoded.min() >= -1 and decoded.max() <= 1


def test_latent_normalisation_uses_vae_statistics(tiny_model: VideoModel):
    spec, pipe = tiny_model.spec, tiny_model.pipeline
    pixels = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    with torch.no_grad():
        raw = pipe.vae.encode(pixels).latent_dist.mode()
        z = pipe.vae.config.z_dim
        pipe.vae.register_to_config(latents_mean=[0.5] * z, latents_std=[2.0] * z)
        normalised = spec.encode_video(pipe, pixels)
    torch.testing.assert_close(normalised, (raw - 0.5) / 2.0)


def test_posterior_sampling_is_seeded(tiny_model: VideoModel):
    spec, pipe = tiny_model.spec, tiny_model.pipeline
    pixels = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    with torch.no_grad():
        a = spec.encode_video(pipe, pixels, torch.Generator().manual_seed(0))
        b = spec.encode_video(pipe, pixels, torch.Generator().manual_seed(0))
        mode = spec.encode_video(pipe, pixels)
    assert torch.equal(a, b) and not torch.equal(a, mode)


def test_predict_keeps_the_latent_shape(tiny_model: VideoModel):
    noisy = torch.randn(2, 4, 3, 8, 8)
    text = tiny_model.encode_text(["a red circle", "a blue square moving up"])
    assert text.shape == (2, tiny_model.defaults.max_text_tokens, 16)
    with torch.no_grad():
        out = tiny_model.spec.predict(tiny_model.transformer, noisy, torch.tensor([10.0, 900.0]), text)
    assert out.shape == noisy.shape


def test_text_padding_is_zeroed_so_prompts_differ_only_in_their_tokens(tiny_model: VideoModel):
    text = tiny_model.encode_text(["a red circle"])  # 3 words + </s> = 4 real tokens
    assert text[0, 4:].abs().sum() == 0
    assert text[0, :4].abs().sum() > 0


def test_frame_rule_and_size_multiple(tiny_model: VideoModel):
    spec, pipe = tiny_model.spec, tiny_model.pipeline
    for ok in (1, 5, 9, 17):
        assert spec.frame_count_error(pipe, ok) is None
    message = spec.frame_count_error(pipe, 16)
    assert message is not None and "4k+1" in message and "13" in message and "17" in message
    assert spec.size_multiple(pipe) == 8  # 4x VAE downsampling x patch 2


def test_objective_follows_the_scheduler_shift(tiny_model: VideoModel, tiny_config):
    objective = tiny_model.spec.objective(tiny_model.pipeline)
    assert isinstance(objective, FlowMatchingObjective)
    assert objective.shift == pytest.approx(tiny_config.flow_shift)
    tiny_model.pipeline.scheduler.register_to_config(shift=5.0)
    assert tiny_model.spec.objective(tiny_model.pipeline).shift == pytest.approx(5.0)
    assert objective.num_train_timesteps == 1000


def test_a_bf16_transformer_takes_fp32_latents_and_text_states(tiny_model: VideoModel):
    # a bf16 fine-tune feeds the dataset's fp32 latents and cached text states straight in
    transformer = copy.deepcopy(tiny_model.transformer).to(torch.bfloat16)
    spec = tiny_model.spec
    hidden = torch.randn(1, *spec.latent_shape(tiny_model.pipeline, 9, 32, 32))  # (1, C, F', H', W') fp32
    text = tiny_model.encode_text(["a red circle"]).float()  # (1, L, D) fp32
    with torch.no_grad():
        out = spec.call_denoiser(transformer, hidden, torch.tensor([500.0]), text)
    assert out.dtype == torch.bfloat16
    assert out.shape[2:] == hidden.shape[2:]
