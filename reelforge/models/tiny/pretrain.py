"""Pretrain reelforge-tiny on the shapes world: VAE, then latent statistics, then transformer.

    python -m reelforge.models.tiny.pretrain --work-dir runs/tiny --out reelforge/models/tiny/weights

Each stage checkpoints into `--work-dir` and resumes from there when re-run, so an interrupted run
loses at most `--checkpoint-every` steps. Clips are rendered on the fly from a seeded generator.

Why these choices (see the model card for the measured outcome):
* 32x32 frames, 17 frames, VAE base_dim 8 with 4x spatial and 4x temporal compression: a VAE step
  costs ~0.7 s on 2 CPU cores (64x64 costs ~3x more), which buys a few thousand VAE steps in the
  time budget. The VAE trains on full-length clips because the causal VAE's later chunks otherwise
  stay untrained.
* The VAE loss weights object and brand-look pixels up: unweighted, a small VAE learns the
  background and drops the object. The VAE (prompt-agnostic) sees brand looks on half of its clips
  so later LoRA fine-tunes can express them; the transformer never sees a brand look, so the base
  model does not produce one.
* The small UMT5 encoder trains jointly with the transformer: a random frozen encoder would blur
  the single words that carry colour, shape and direction.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from reelforge.models.objectives import FlowMatchingObjective, diffusion_loss
from reelforge.models.spec import ModelDefaults
from reelforge.models.tiny.brand_looks import (
    BRAND_COLOURS,
    BRAND_KINDS,
    BrandLook,
    brand_region,
)
from reelforge.models.tiny.random_pipeline import (
    TinyWanConfig,
    build_random_wan_pipeline,
    save_model_dir,
)
from reelforge.models.tiny.shapes_world import (
    FRAME_SIZE,
    Combo,
    all_combos,
    held_out_combos,
    render_clip,
    sample_clip_spec,
)
from reelforge.models.tiny.transformer_training_state import TransformerTrainingState, save_checkpoint

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainConfig:
    """Every knob of the pretraining run; the defaults are the shipped run."""

    seed: int = 0
    vae_steps: int = 3300
    vae_batch: int = 8
    vae_lr: float = 1e-3
    vae_brand_fraction: float = 0.5
    object_weight: float = 8.0
    brand_weight: float = 3.0
    kl_weight: float = 1e-6
    latent_clips: int = 4096
    transformer_steps: int = 5500
    transformer_batch: int = 48
    transformer_lr: float = 5e-4
    caption_dropout: float = 0.1
    ema_decay: float = 0.998
    warmup_steps: int = 100
    checkpoint_every: int = 200
    threads: int = 2

    def model(self) -> TinyWanConfig:
        """The architecture that is trained."""
        return TinyWanConfig.reelforge_tiny()


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up then cosine decay to 10%."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def training_combos(seed: int = 2024) -> list[Combo]:
    """All combinations except the held-out evaluation ones."""
    held = set(held_out_combos(seed=seed))
    return [c for c in all_combos() if c not in held]


def render_batch(rng: np.random.Generator, combos: list[Combo], n: int, brand_fraction: float = 0.0):
    """(pixels (B, 3, F, H, W) in [-1, 1], loss weights parts (B, 1, F, H, W) x2, captions)."""
    pixels, object_masks, brand_masks, captions = [], [], [], []
    for _ in range(n):
        spec = sample_clip_spec(rng, combos[rng.integers(len(combos))])
        video, mask = render_clip(spec)
        brand = np.zeros((FRAME_SIZE, FRAME_SIZE), dtype=np.float32)
        if rng.random() < brand_fraction:
            look = BrandLook(
                BRAND_KINDS[rng.integers(len(BRAND_KINDS))], list(BRAND_COLOURS)[rng.integers(len(BRAND_COLOURS))]
            )
            video = look.apply(video)
            brand = brand_region(look.kind).astype(np.float32)
        pixels.append(video.frames)
        object_masks.append(mask)
        brand_masks.append(np.broadcast_to(brand, mask.shape))
        captions.append(spec.caption)
    x = torch.from_numpy(np.stack(pixels)).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0  # (B, 3, F, H, W)
    obj = torch.from_numpy(np.stack(object_masks)).unsqueeze(1)  # (B, 1, F, H, W)
    brd = torch.from_numpy(np.stack(brand_masks).copy()).unsqueeze(1)  # (B, 1, F, H, W)
    return x, obj, brd, captions


def reconstruction_loss(recon: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """L1 + L2 of a reconstruction (B, 3, F, H, W), weighted per pixel (B, 1, F, H, W) and normalised by the weights."""
    err = recon - x
    return (weight * (err.abs() + err.pow(2))).mean() / weight.mean()


def train_vae(config: PretrainConfig, vae: torch.nn.Module, work_dir: Path) -> None:
    """Stage 1: reconstruct full-length clips, weighting object and brand pixels up."""
    ckpt = work_dir / "vae.pt"
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr, weight_decay=0.0)
    start = 0
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        vae.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
        logger.info("VAE: resuming at step %d", start)
    if start >= config.vae_steps:
        return
    rng = np.random.default_rng([config.seed, 1, start])
    combos = all_combos()  # the VAE is prompt-agnostic: every combination is fair game
    vae.train()
    bar = tqdm(range(start, config.vae_steps), initial=start, total=config.vae_steps, desc="VAE", unit="step")
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = config.vae_lr * lr_factor(step, config.vae_steps, config.warmup_steps)
        x, obj, brd, _ = render_batch(rng, combos, config.vae_batch, config.vae_brand_fraction)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample  # (B, 3, F, H, W)
        weight = 1.0 + config.object_weight * obj + config.brand_weight * brd  # (B, 1, F, H, W)
        err = recon - x
        loss = reconstruction_loss(recon, x, weight) + config.kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        psnr = 10 * math.log10(4.0 / max(err.detach().pow(2).mean().item(), 1e-10))
        bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{psnr:.1f}")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.vae_steps:
            save_checkpoint(ckpt, {"model": vae.state_dict(), "optimizer": optimizer.state_dict(), "step": step + 1})


@torch.no_grad()
def encode_latent_cache(config: PretrainConfig, vae: torch.nn.Module, work_dir: Path) -> dict:
    """Stage 2: encode brand-free training clips once; measure per-channel latent mean and std."""
    path = work_dir / "latents.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    vae.eval()
    rng = np.random.default_rng([config.seed, 2])
    combos = training_combos()
    latents, captions = [], []
    for _ in tqdm(range(0, config.latent_clips, 32), desc="encode", unit="batch"):
        x, _, _, caps = render_batch(rng, combos, 32)
        latents.append(vae.encode(x).latent_dist.mode())  # (32, C, F', H', W')
        captions.extend(caps)
    z = torch.cat(latents)
    mean = z.mean(dim=(0, 2, 3, 4))  # (C,)
    std = z.std(dim=(0, 2, 3, 4)).clamp_min(1e-4)
    cache = {
        "latents": (z - mean.view(1, -1, 1, 1, 1)) / std.view(1, -1, 1, 1, 1),
        "captions": captions,
        "mean": mean.tolist(),
        "std": std.tolist(),
    }
    torch.save(cache, path)
    return cache


def encode_captions(text_encoder: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Text states (B, L, D) with padding zeroed, exactly as WanPipeline.encode_prompt leaves them."""
    states = text_encoder(ids, mask).last_hidden_state  # (B, L, D)
    return states * mask.unsqueeze(-1).to(states.dtype)


def train_transformer(config: PretrainConfig, pipeline, cache: dict, work_dir: Path, defaults: ModelDefaults) -> None:
    """Stage 3: flow matching on cached latents; the text encoder trains jointly; EMA weights kept."""
    ckpt = work_dir / "transformer.pt"
    transformer, text_encoder, tokenizer = pipeline.transformer, pipeline.text_encoder, pipeline.tokenizer
    training = TransformerTrainingState(transformer, text_encoder, config.transformer_lr)
    start = training.resume(ckpt)
    if start:
        logger.info("transformer: resuming at step %d", start)
    if start >= config.transformer_steps:
        training.finish()
        return
    tokens = tokenizer(
        cache["captions"] + [""],
        padding="max_length",
        max_length=defaults.max_text_tokens,
        truncation=True,
        return_tensors="pt",
    )
    ids, mask = tokens.input_ids[:-1], tokens.attention_mask[:-1]  # (N, L)
    empty_ids, empty_mask = tokens.input_ids[-1:], tokens.attention_mask[-1:]  # (1, L): the "" prompt
    latents = cache["latents"]  # (N, C, F', H', W')
    objective = FlowMatchingObjective(sampling="logit_normal", shift=float(pipeline.scheduler.config.shift))
    generator = torch.Generator().manual_seed(config.seed * 1000 + start)
    transformer.train()
    text_encoder.train()
    bar = tqdm(
        range(start, config.transformer_steps),
        initial=start,
        total=config.transformer_steps,
        desc="transformer",
        unit="step",
    )
    for step in bar:
        training.set_lr(config.transformer_lr * lr_factor(step, config.transformer_steps, config.warmup_steps))
        index = torch.randint(0, latents.shape[0], (config.transformer_batch,), generator=generator)
        x0 = latents[index]  # (B, C, F', H', W')
        drop = torch.rand(config.transformer_batch, generator=generator) < config.caption_dropout
        batch_ids = torch.where(drop[:, None], empty_ids, ids[index])  # (B, L)
        batch_mask = torch.where(drop[:, None], empty_mask, mask[index])
        text = encode_captions(text_encoder, batch_ids, batch_mask)
        eps = torch.randn(x0.shape, generator=generator)
        t = objective.sample_timesteps(x0.shape[0], generator)
        batch = objective.batch(x0, eps, t)
        prediction = transformer(
            hidden_states=batch.noisy, timestep=batch.model_timesteps, encoder_hidden_states=text, return_dict=False
        )[0]
        loss = diffusion_loss(prediction, batch.target)
        training.step(loss, min(config.ema_decay, (1 + step) / (10 + step)))
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.transformer_steps:
            training.save(ckpt, step + 1)
    training.finish()


def pretrain(config: PretrainConfig, work_dir: Path, out_dir: Path, model_config: TinyWanConfig | None = None) -> Path:
    """Run (or resume) every stage and write the diffusers-format pipeline to `out_dir`.

    `model_config` overrides the architecture (tests use `TinyWanConfig.for_tests()`).
    """
    torch.set_num_threads(config.threads)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
    model_config = model_config or config.model()
    pipeline = build_random_wan_pipeline(model_config, seed=config.seed)
    timings = {}
    started = time.perf_counter()
    train_vae(config, pipeline.vae, work_dir)
    timings["vae_seconds"] = time.perf_counter() - started
    cache = encode_latent_cache(config, pipeline.vae, work_dir)
    pipeline.vae.register_to_config(latents_mean=cache["mean"], latents_std=cache["std"])
    started = time.perf_counter()
    train_transformer(config, pipeline, cache, work_dir, model_config.defaults)
    timings["transformer_seconds"] = time.perf_counter() - started
    for module in (pipeline.vae, pipeline.transformer, pipeline.text_encoder):
        module.eval()
    card = {
        "name": "reelforge-tiny",
        "weights": "pretrained",
        "world": "shapes",
        "pretrain_config": asdict(config),
        "data": "shapes world, held-out combinations excluded from transformer training",
        **timings,
    }
    return save_model_dir(pipeline, out_dir, model_config.defaults, card)


def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m reelforge.models.tiny.pretrain --work-dir DIR --out DIR [--set k=v ...]`."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, required=True, help="checkpoints; re-run to resume")
    parser.add_argument("--out", type=Path, required=True, help="where to write the diffusers pipeline")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a PretrainConfig field"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    fields = PretrainConfig.__dataclass_fields__
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in fields:
            parser.error(f"--set {item}: unknown field {key!r}; known: {', '.join(fields)}")
        overrides[key] = type(getattr(PretrainConfig(), key))(value)
    path = pretrain(PretrainConfig(**overrides), args.work_dir, args.out)
    logger.info("wrote %s", path)


if __name__ == "__main__":
    main()
