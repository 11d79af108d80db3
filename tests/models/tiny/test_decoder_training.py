"""Decoder sharpening: only the VAE decoder moves; encoder, latent space, transformer and text encoder stay."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from reelforge.models.loading import load_model
from reelforge.models.tiny.decoder_training import (
    DecoderTrainingConfig,
    continue_training,
    decoder_parameters,
    outline_band,
)
from reelforge.models.tiny.random_pipeline import MODEL_CARD_CONFIG


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_only_the_decoder_trains_and_the_run_is_recorded_and_resumes(tiny_model_dir: Path, tmp_path: Path):
    base = load_model(str(tiny_model_dir), device="cpu")
    run = dict(steps=2, batch=2, checkpoint_every=1, warmup_steps=1, threads=1, lr=1e-2)
    out = continue_training(DecoderTrainingConfig(**run), tiny_model_dir, tmp_path / "work", tmp_path / "out")
    tuned = load_model(str(out), device="cpu")

    for name in ("transformer", "text_encoder"):
        before, after = _state(getattr(base.pipeline, name)), _state(getattr(tuned.pipeline, name))
        assert all(torch.equal(before[k], after[k]) for k in before), f"{name} changed"
    for part in ("encoder", "quant_conv"):
        before, after = _state(getattr(base.pipeline.vae, part)), _state(getattr(tuned.pipeline.vae, part))
        assert all(torch.equal(before[k], after[k]) for k in before), f"the VAE's {part} changed"
    moved = [
        not torch.equal(a, b)
        for a, b in zip(decoder_parameters(base.pipeline.vae), decoder_parameters(tuned.pipeline.vae))
    ]
    assert any(moved), "the decoder did not train"

    card = json.loads((out / MODEL_CARD_CONFIG).read_text())
    assert [run["script"] for run in card["continuations"]][-1] == "decoder_training"
    assert card["decoder_training"]["steps"] == 2
    assert torch.load(tmp_path / "work" / "decoder.pt", weights_only=False)["step"] == 2
    continue_training(DecoderTrainingConfig(**{**run, "steps": 3}), tiny_model_dir, tmp_path / "work", tmp_path / "o2")
    assert torch.load(tmp_path / "work" / "decoder.pt", weights_only=False)["step"] == 3


def test_a_wider_decoder_keeps_the_latent_space_and_decodes_at_the_same_shape(tiny_model_dir: Path, tmp_path: Path):
    base = load_model(str(tiny_model_dir), device="cpu")
    run = dict(steps=1, batch=2, checkpoint_every=1, warmup_steps=1, threads=1, decoder_base_dim=16)
    out = continue_training(DecoderTrainingConfig(**run), tiny_model_dir, tmp_path / "work", tmp_path / "out")
    tuned = load_model(str(out), device="cpu")

    assert tuned.pipeline.vae.config.decoder_base_dim == 16
    assert tuned.pipeline.vae.decoder.conv_out.in_channels == 16  # the widest-resolution stage, widened
    assert base.pipeline.vae.decoder.conv_out.in_channels != 16
    x = torch.rand(1, 3, 5, 32, 32) * 2 - 1  # (B, 3, F, H, W)
    with torch.no_grad():
        z_base = base.pipeline.vae.encode(x).latent_dist.mode()
        z_tuned = tuned.pipeline.vae.encode(x).latent_dist.mode()
        decoded = tuned.pipeline.vae.decode(z_tuned).sample
    assert torch.equal(z_base, z_tuned), "the encoder (the latent space the transformer learned) changed"
    assert decoded.shape == x.shape


def test_the_outline_band_rings_the_edge_on_both_sides_and_skips_the_interior():
    coverage = torch.zeros(1, 1, 1, 12, 12)  # (B, 1, F, H, W): a 4x4 square at rows/cols 4..7
    coverage[..., 4:8, 4:8] = 1.0
    band = outline_band(coverage, 1)[0, 0, 0]  # (H, W)
    assert band[3, 3] == 1 and band[4, 4] == 1, "one pixel outside and one inside the corner"
    assert band[5, 5] == 0, "the interior beyond the band"
    assert band[2, 2] == 0 and band[0].sum() == 0, "the background beyond the band"
    assert band.sum() == 6 * 6 - 2 * 2
