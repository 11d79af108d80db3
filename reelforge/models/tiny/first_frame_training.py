"""Teach reelforge-tiny image-to-video the Wan 2.2 TI2V way, continuing from its shipped weights.

    python -m reelforge.models.tiny.first_frame_training --work-dir runs/tiny-i2v --out reelforge/models/tiny/weights

Half of each batch trains as before (text-to-video, so text-to-video quality is kept); the other half
keeps the clip's first latent frame clean with timestep 0 on its tokens and skips it in the loss
(`first_frame_training_inputs`). Half of those conditioned samples get a caption without colour and
shape ("moving left on a white background"), so the object's identity has to come from the image.
The result is saved with `expand_timesteps=True`: it loads as the `wan-ti2v` family and takes an
optional first frame, like Wan 2.2 TI2V-5B. Checkpoints go to `--work-dir`; re-run to resume.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import WanPipeline
from tqdm import tqdm

from reelforge.models.image_conditioning import first_frame_training_inputs
from reelforge.models.objectives import FlowMatchingObjective, diffusion_loss
from reelforge.models.tiny.continuation import open_base, run_continuation, save_continued
from reelforge.models.tiny.object_weighting import latent_object_coverage, object_loss_weights
from reelforge.models.tiny.pretrain import encode_captions, lr_factor, training_combos
from reelforge.models.tiny.repatch import repatch_transformer
from reelforge.models.tiny.shapes_world import motion_caption, render_clip, sample_clip_spec
from reelforge.models.tiny.transformer_training_state import TransformerTrainingState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FirstFrameTrainingConfig:
    """Every knob of the continuation run; the defaults are the shipped run."""

    seed: int = 0
    steps: int = 2000
    batch: int = 32
    lr: float = 2e-4
    conditioned_fraction: float = 0.5
    motion_only_fraction: float = 0.5  # of the conditioned samples
    caption_dropout: float = 0.1
    ema_decay: float = 0.998
    warmup_steps: int = 50
    latent_clips: int = 4096
    checkpoint_every: int = 100
    threads: int = 2
    # False keeps every caption's text states exactly as in the base, so what other continuations taught
    # the text encoder (Chinese words) survives, and the states are computed once instead of per step.
    train_text_encoder: bool = True
    # Extra loss weight on the latent cells the object touches (0: the plain mean the first runs used).
    object_weight: float = 0.0
    # True draws the transformer's weights afresh (seeded): image conditioning is then learned from
    # the first step rather than added to a model that learned colour and shape from text alone.
    from_scratch: bool = False
    # A spatial transformer patch other than the base's (0 keeps it): 1 puts a 10-pixel object across
    # several tokens instead of one or two, warm-started from the base's blocks (see `repatch.py`).
    spatial_patch: int = 0


@torch.no_grad()
def encode_clips(pipeline: WanPipeline, seed: int, count: int, work_dir: Path) -> dict:
    """Encode `count` brand-free training clips with the shipped VAE (normalised by its shipped statistics).

    Cached in `work_dir/latents.pt` with each clip's caption, motion-only caption, combination and
    object coverage on the latent grid.
    """
    path = work_dir / "latents.pt"
    if path.exists():
        cache = torch.load(path, weights_only=False)
        if "objects" in cache:  # caches from before object weighting are encoded again
            return cache
    vae = pipeline.vae.eval()
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    rng = np.random.default_rng([seed, 7])
    combos = training_combos()
    latents, objects, captions, motions, clip_combos = [], [], [], [], []
    for _ in tqdm(range(0, count, 32), desc="encode", unit="batch"):
        clips = [sample_clip_spec(rng, combos[rng.integers(len(combos))]) for _ in range(32)]
        rendered = [render_clip(spec) for spec in clips]
        pixels = np.stack([video.frames for video, _ in rendered])  # (B, F, H, W, 3)
        coverage = torch.from_numpy(np.stack([masks for _, masks in rendered])).float()  # (B, F, H, W)
        x = torch.from_numpy(pixels).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0  # (B, 3, F, H, W)
        z = (vae.encode(x).latent_dist.mode() - mean) / std  # (B, C, F', H', W')
        latents.append(z)
        temporal = (x.shape[2] - 1) // (z.shape[2] - 1)
        objects.append(latent_object_coverage(coverage, temporal, x.shape[3] // z.shape[3]).half())
        captions += [spec.caption for spec in clips]
        motions += [motion_caption(spec.direction, spec.background) for spec in clips]
        clip_combos += [(spec.colour, spec.shape, spec.direction, spec.background) for spec in clips]
    cache = {
        "latents": torch.cat(latents),
        "objects": torch.cat(objects),
        "captions": captions,
        "motions": motions,
        "combos": clip_combos,
    }
    torch.save(cache, path)
    return cache


def train(config: FirstFrameTrainingConfig, pipeline: WanPipeline, cache: dict, work_dir: Path, max_tokens: int):
    """Continue training transformer and text encoder on mixed text- and image-to-video batches."""
    ckpt = work_dir / "first_frame.pt"
    if config.spatial_patch:
        pipeline.transformer = repatch_transformer(pipeline.transformer, config.spatial_patch)
    transformer, text_encoder, tokenizer = pipeline.transformer, pipeline.text_encoder, pipeline.tokenizer
    if config.from_scratch:
        torch.manual_seed(config.seed + 1)
        transformer.load_state_dict(type(transformer).from_config(transformer.config).state_dict())
    training = TransformerTrainingState(transformer, text_encoder if config.train_text_encoder else None, config.lr)
    start = training.resume(ckpt)
    if start:
        logger.info("first-frame training: resuming at step %d", start)
    if start < config.steps:
        n = len(cache["captions"])
        tokens = tokenizer(
            cache["captions"] + cache["motions"] + [""],
            padding="max_length",
            max_length=max_tokens,
            truncation=True,
            return_tensors="pt",
        )
        ids, mask = tokens.input_ids, tokens.attention_mask  # (2N + 1, L): full, motion-only, empty
        frozen_states = None
        if not config.train_text_encoder:
            text_encoder.requires_grad_(False)
            with torch.no_grad():
                frozen_states = torch.cat(
                    [
                        encode_captions(text_encoder, ids[i : i + 512], mask[i : i + 512])
                        for i in range(0, len(ids), 512)
                    ]
                )  # (2N + 1, L, D)
        latents = cache["latents"]
        objective = FlowMatchingObjective(sampling="logit_normal", shift=float(pipeline.scheduler.config.shift))
        patch = tuple(transformer.config.patch_size)
        generator = torch.Generator().manual_seed(config.seed * 1000 + start)
        transformer.train()
        text_encoder.train(config.train_text_encoder)
        bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="first-frame", unit="step")
        for step in bar:
            training.set_lr(config.lr * lr_factor(step, config.steps, config.warmup_steps))
            b = config.batch
            index = torch.randint(0, n, (b,), generator=generator)
            conditioned = torch.rand(b, generator=generator) < config.conditioned_fraction
            motion_only = conditioned & (torch.rand(b, generator=generator) < config.motion_only_fraction)
            dropped = torch.rand(b, generator=generator) < config.caption_dropout
            row = torch.where(motion_only, index + n, index)
            row = torch.where(dropped, torch.full_like(row, 2 * n), row)
            if frozen_states is not None:
                text = frozen_states[row]  # (B, L, D)
            else:
                text = encode_captions(text_encoder, ids[row], mask[row])  # (B, L, D)
            x0 = latents[index]  # (B, C, F', H', W')
            eps = torch.randn(x0.shape, generator=generator)
            t = objective.sample_timesteps(b, generator)
            batch = objective.batch(x0, eps, t)
            hidden, timesteps, loss_mask = first_frame_training_inputs(
                batch.noisy, x0, batch.model_timesteps, conditioned, patch
            )
            prediction = transformer(
                hidden_states=hidden, timestep=timesteps, encoder_hidden_states=text, return_dict=False
            )[0]
            weights = object_loss_weights(cache["objects"][index].float(), config.object_weight)  # (B, 1, F', H', W')
            loss = diffusion_loss(prediction, batch.target, mask=loss_mask * weights)
            training.step(loss, config.ema_decay)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
                training.save(ckpt, step + 1)
    training.finish()


def continue_training(config: FirstFrameTrainingConfig, base_dir: Path, work_dir: Path, out_dir: Path) -> Path:
    """Load the model at `base_dir`, train first-frame conditioning, write a TI2V-style model to `out_dir`."""
    pipeline, card, defaults = open_base(config, base_dir, work_dir)
    started = time.perf_counter()
    cache = encode_clips(pipeline, config.seed, config.latent_clips, work_dir)
    train(config, pipeline, cache, work_dir, defaults.max_text_tokens)
    for module in (pipeline.vae, pipeline.transformer, pipeline.text_encoder):
        module.eval()
    pipeline.register_to_config(expand_timesteps=True)  # the TI2V family: an optional clean first frame
    return save_continued(pipeline, out_dir, defaults, card, "first_frame_training", config, started)


def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m reelforge.models.tiny.first_frame_training --work-dir DIR --out DIR [--base DIR]`."""
    run_continuation(FirstFrameTrainingConfig, continue_training, __doc__, "the text-to-video model to continue", argv)


if __name__ == "__main__":
    main()
