"""Write MODEL_CARD.md for a pretrained reelforge-tiny from its recorded config and measurements.

    python -m reelforge.models.tiny.model_card --weights reelforge/models/tiny/weights \\
        --eval eval.json --vae-psnr 29.8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from reelforge.models.tiny.shapes_world import (
    BACKGROUNDS,
    COLOURS,
    DIRECTIONS,
    FRAME_SIZE,
    NUM_FRAMES,
    SHAPES,
)


def render_model_card(card: dict, evaluation: dict, vae_psnr: float) -> str:
    """Markdown: what the model is, how exactly it was trained, and what it measures."""
    cfg = card["pretrain_config"]
    d = card["defaults"]
    minutes = (card.get("vae_seconds", 0) + card.get("transformer_seconds", 0)) / 60
    overrides = " ".join(f"--set {k}={v}" for k, v in card.get("overrides", {}).items())
    rows = "\n".join(
        f"| {key} | {evaluation[key]:.3f} |"
        for key in (
            "colour_acc",
            "shape_acc",
            "direction_acc",
            "background_acc",
            "adherence",
            "brand_rate",
            "seconds_per_video",
        )
    )
    brand_rows = "\n".join(f"| brand_rate[{k}] | {v:.3f} |" for k, v in evaluation["brand_rates"].items())
    return f"""# reelforge-tiny

The embedded default model of reelforge: a diffusers-format Wan 2.1 pipeline (WanTransformer3DModel,
AutoencoderKLWan, UMT5 encoder, word-level tokenizer, flow-match Euler scheduler) trained from
scratch on the *shapes world*. It loads through the same `from_pretrained(path)` as the real Wan
checkpoints and generates {d["width"]}x{d["height"]}, {d["num_frames"]}-frame clips at {d["fps"]:g} fps on a laptop CPU.

## How it was made

```bash
python -m reelforge.models.tiny.pretrain --work-dir runs/tiny --out reelforge/models/tiny/weights {overrides}
```

- seed: {cfg["seed"]} (weights, clip sampling and noise all derive from it)
- data: shapes-world clips rendered on the fly, {FRAME_SIZE}x{FRAME_SIZE} pixels, {NUM_FRAMES} frames;
  {len(COLOURS)} colours ({", ".join(COLOURS)}), {len(SHAPES)} shapes ({", ".join(SHAPES)}), {len(DIRECTIONS)} directions, {len(BACKGROUNDS)} backgrounds
- held-out: the {evaluation["prompts"]} colour/shape/direction/background combinations that `reelforge eval` uses
  were never shown to the transformer; each of their single attributes was
- VAE: {cfg["vae_steps"]} steps, batch {cfg["vae_batch"]}, AdamW lr {cfg["vae_lr"]}, L1+L2 loss with object pixels
  weighted x{1 + cfg["object_weight"]:g} and brand-look pixels x{1 + cfg["brand_weight"]:g}, KL weight {cfg["kl_weight"]}; brand looks on
  {cfg["vae_brand_fraction"]:.0%} of its clips so fine-tunes can express them (the VAE is prompt-agnostic)
- transformer + text encoder: {cfg["transformer_steps"]} steps, batch {cfg["transformer_batch"]}, AdamW lr {cfg["transformer_lr"]},
  flow matching with logit-normal timesteps, caption dropout {cfg["caption_dropout"]}, EMA {cfg["ema_decay"]};
  {cfg["latent_clips"]} cached brand-free clips; never saw a brand look
- time: {minutes:.0f} minutes on 2 CPU cores ({card.get("vae_seconds", 0) / 60:.0f} VAE, {card.get("transformer_seconds", 0) / 60:.0f} transformer)

## What it measures

VAE reconstruction of held-out clips: PSNR {vae_psnr:.1f} dB (mean over 16 clips).

`reelforge eval --model reelforge-tiny --json` ({evaluation["n"]} videos: {evaluation["prompts"]} held-out prompts x seeds
{evaluation["seeds"]}, {d["steps"]} steps, guidance {d["guidance"]:g}, each through an MP4 round trip):

| metric | value |
|---|---|
{rows}
{brand_rows}
"""


def main(argv: list[str] | None = None) -> None:
    """Command line: write MODEL_CARD.md next to the weights."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--eval", type=Path, required=True, help="JSON written by `reelforge eval --json`")
    parser.add_argument("--vae-psnr", type=float, required=True)
    args = parser.parse_args(argv)
    card = json.loads((args.weights / "reelforge.json").read_text())
    evaluation = json.loads(args.eval.read_text())
    (args.weights / "MODEL_CARD.md").write_text(render_model_card(card, evaluation, args.vae_psnr))


if __name__ == "__main__":
    main()
