"""Sharpen reelforge-tiny's VAE decoder on its own latents, leaving the latent space as it is.

    python -m reelforge.models.tiny.decoder_training --work-dir runs/tiny-decoder --out DIR [--base DIR]

The shipped VAE rounds corners: decoded through it (and an MP4 round trip), the analyzer reads
only 0.78 of the held-out image-to-video clips' colour and shape right, against 1.00 for the
rendered clips. That caps every metric that reads a shape, whatever the transformer does. Here the
encoder, the latent statistics, the transformer and the text encoder stay bit for bit; only the
decoder (and its `post_quant_conv`) trains, to reconstruct clips from the encoder's mode latents
(what ingest caches and the transformer generates), with the pretraining's weighted loss.
Checkpoints go to `--work-dir`; re-run to resume.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLWan, WanPipeline
from tqdm import tqdm

from reelforge.models.tiny.continuation import open_base, run_continuation, save_continued
from reelforge.models.tiny.pretrain import lr_factor, reconstruction_loss, render_batch
from reelforge.models.tiny.shapes_world import all_combos
from reelforge.models.tiny.transformer_training_state import save_checkpoint

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecoderTrainingConfig:
    """Every knob of the decoder run; the defaults are the shipped run."""

    seed: int = 0
    steps: int = 1500
    batch: int = 8
    lr: float = 3e-4
    warmup_steps: int = 50
    object_weight: float = 8.0
    brand_weight: float = 3.0
    brand_fraction: float = 0.5  # brand looks must still decode after the run
    checkpoint_every: int = 100
    threads: int = 2
    # Extra weight on a band of `edge_band` pixels either side of the object's outline. Decoded on the
    # mid-grey background, corners round off and a dark halo rings the object; nothing clips those
    # errors there as 0 and 255 do on black and white, and the plain weights barely price them.
    edge_weight: float = 0.0
    edge_band: int = 2
    # Channels of the decoder's widest-resolution stage (0: keep the base's decoder and continue it).
    # A wider decoder starts from random weights; the encoder, and so the latent space, stays.
    decoder_base_dim: int = 0


def with_wider_decoder(vae: AutoencoderKLWan, decoder_base_dim: int) -> AutoencoderKLWan:
    """A copy of `vae` whose decoder has `decoder_base_dim` base channels: same encoder, new random decoder."""
    config = {**vae.config, "decoder_base_dim": decoder_base_dim}
    wider = AutoencoderKLWan.from_config(config)
    kept = {k: v for k, v in vae.state_dict().items() if not k.startswith("decoder.")}
    missing, unexpected = wider.load_state_dict(kept, strict=False)
    if unexpected or any(not k.startswith("decoder.") for k in missing):
        raise ValueError(
            f"a wider decoder must keep every other VAE weight; missing {missing}, unexpected {unexpected}"
        )
    return wider.to(dtype=next(vae.parameters()).dtype)


def outline_band(coverage: torch.Tensor, band: int) -> torch.Tensor:
    """1 on pixels within `band` pixels of the object's outline (inside or out), from coverage (B, 1, F, H, W)."""
    kernel = (1, 2 * band + 1, 2 * band + 1)
    padding = (0, band, band)
    dilated = F.max_pool3d(coverage, kernel, stride=1, padding=padding)  # (B, 1, F, H, W)
    eroded = -F.max_pool3d(-coverage, kernel, stride=1, padding=padding)  # (B, 1, F, H, W)
    return (dilated - eroded).clamp(0.0, 1.0)


def decoder_parameters(vae: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters that map a latent to pixels: `post_quant_conv` and the decoder."""
    return [*vae.post_quant_conv.parameters(), *vae.decoder.parameters()]


def train_decoder(config: DecoderTrainingConfig, pipeline: WanPipeline, work_dir: Path) -> None:
    """Decode the frozen encoder's mode latents back to the rendered clips; the decoder alone learns."""
    vae = pipeline.vae
    ckpt = work_dir / "decoder.pt"
    vae.requires_grad_(False)
    params = decoder_parameters(vae)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    start = 0
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        vae.load_state_dict(state["vae"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
        logger.info("decoder: resuming at step %d", start)
    rng = np.random.default_rng([config.seed, 11, start])
    combos = all_combos()  # the VAE is prompt-agnostic: every combination is fair game
    vae.eval()  # no dropout or norm statistics to update; gradients still flow to the decoder
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="decoder", unit="step")
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = config.lr * lr_factor(step, config.steps, config.warmup_steps)
        x, obj, brd, _ = render_batch(rng, combos, config.batch, config.brand_fraction)  # x: (B, 3, F, H, W)
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mode()  # (B, C, F', H', W'): the latents generation produces
        recon = vae.decode(z).sample  # (B, 3, F, H, W)
        weight = 1.0 + config.object_weight * obj + config.brand_weight * brd  # (B, 1, F, H, W)
        if config.edge_weight:
            weight = weight + config.edge_weight * outline_band(obj, config.edge_band)
        loss = reconstruction_loss(recon, x, weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        psnr = 10 * math.log10(4.0 / max((recon.detach() - x).pow(2).mean().item(), 1e-10))
        bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{psnr:.1f}")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            save_checkpoint(ckpt, {"vae": vae.state_dict(), "optimizer": optimizer.state_dict(), "step": step + 1})
    vae.requires_grad_(False)


def continue_training(config: DecoderTrainingConfig, base_dir: Path, work_dir: Path, out_dir: Path) -> Path:
    """Load the model at `base_dir`, sharpen its VAE decoder, write the whole pipeline to `out_dir`."""
    pipeline, card, defaults = open_base(config, base_dir, work_dir)
    if config.decoder_base_dim:
        pipeline.vae = with_wider_decoder(pipeline.vae, config.decoder_base_dim)
    started = time.perf_counter()
    train_decoder(config, pipeline, work_dir)
    return save_continued(pipeline, out_dir, defaults, card, "decoder_training", config, started)


def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m reelforge.models.tiny.decoder_training --work-dir DIR --out DIR [--base DIR]`."""
    run_continuation(DecoderTrainingConfig, continue_training, __doc__, "the model whose decoder to sharpen", argv)


if __name__ == "__main__":
    main()
