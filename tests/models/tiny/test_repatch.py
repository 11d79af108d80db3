"""Resizing a trained Wan transformer's spatial patch: the warm start's equations and the training knob."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from diffusers import WanTransformer3DModel

from reelforge.models.loading import load_model
from reelforge.models.sampling import GenerationSettings, generate
from reelforge.models.tiny.repatch import repatch_transformer, resized_patch_embedding, resized_proj_out


def _transformer() -> WanTransformer3DModel:
    torch.manual_seed(0)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4,
        out_channels=4,
        text_dim=8,
        freq_dim=16,
        ffn_dim=32,
        num_layers=2,
        rope_max_seq_len=32,
    ).eval()


def test_a_one_pixel_token_embeds_like_the_old_patch_over_the_upsampled_latent():
    transformer = _transformer()
    resized = repatch_transformer(transformer, 1)
    latent = torch.randn(2, 4, 3, 4, 6)  # (B, C, F, H, W)
    upsampled = latent.repeat_interleave(2, dim=3).repeat_interleave(2, dim=4)  # (B, C, F, 2H, 2W)
    with torch.no_grad():
        expected = transformer.patch_embedding(upsampled)  # (B, D, F, H, W)
        got = resized.patch_embedding(latent)  # (B, D, F, H, W)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_the_new_output_cell_is_the_mean_of_the_old_cells_it_covers():
    torch.manual_seed(1)
    weight, bias = torch.randn(2 * 2 * 3, 5), torch.randn(2 * 2 * 3)  # old patch (1, 2, 2), 3 channels, width 5
    new_weight, new_bias = resized_proj_out(weight, bias, (1, 2, 2), (1, 1, 1), channels=3)
    hidden = torch.randn(7, 5)  # (tokens, D)
    old = (hidden @ weight.T + bias).reshape(7, 2, 2, 3)  # (tokens, ph, pw, C): diffusers' unpatchify order
    torch.testing.assert_close(hidden @ new_weight.T + new_bias, old.mean(dim=(1, 2)))


def test_every_block_carries_over_and_the_grid_has_four_times_the_tokens():
    transformer = _transformer()
    resized = repatch_transformer(transformer, 1)
    assert tuple(resized.config.patch_size) == (1, 1, 1)
    old, new = transformer.state_dict(), resized.state_dict()
    blocks = [name for name in old if name.startswith("blocks.")]
    assert blocks and all(torch.equal(old[name], new[name]) for name in blocks)
    latent = torch.randn(1, 4, 3, 4, 4)  # (B, C, F, H, W)
    with torch.no_grad():
        assert (
            resized.patch_embedding(latent).flatten(2).shape[-1]
            == 4 * transformer.patch_embedding(latent).flatten(2).shape[-1]
        )
        out = resized(hidden_states=latent, timestep=torch.tensor([500]), encoder_hidden_states=torch.randn(1, 3, 8))
    assert out.sample.shape == latent.shape
    assert repatch_transformer(transformer, 2) is transformer  # the same patch: nothing to do


def test_a_patch_that_does_not_tile_the_old_one_is_refused():
    with pytest.raises(ValueError, match="must tile"):
        resized_patch_embedding(torch.zeros(8, 4, 1, 2, 2), (2, 2), (3, 3))
    with pytest.raises(ValueError, match="must tile"):
        resized_proj_out(torch.zeros(16, 8), torch.zeros(16), (1, 2, 2), (1, 3, 3), channels=4)


def test_first_frame_training_with_a_finer_patch_saves_a_model_that_generates(tiny_model_dir: Path, tmp_path: Path):
    from reelforge.models.tiny.first_frame_training import FirstFrameTrainingConfig, continue_training

    config = FirstFrameTrainingConfig(steps=1, batch=2, latent_clips=8, warmup_steps=1, threads=1, spatial_patch=1)
    out = continue_training(config, tiny_model_dir, tmp_path / "work", tmp_path / "out")
    assert json.loads((out / "transformer" / "config.json").read_text())["patch_size"] == [1, 1, 1]
    model = load_model(str(out), device="cpu")
    video = generate(model, GenerationSettings("a red circle moving left on a white background", seed=0, steps=2))
    assert video.frames.ndim == 4 and video.frames.shape[0] > 1
