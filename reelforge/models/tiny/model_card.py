"""Write MODEL_CARD.md for a pretrained reelforge-tiny from its recorded config and measurements.

    python -m reelforge.models.tiny.model_card --weights reelforge/models/tiny/weights \\
        --eval eval.json --eval-vae eval_vae.json [--eval-i2v eval_i2v.json] [--eval-zh eval_zh.json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from reelforge.models.tiny.chinese_caption_training import ChineseCaptionTrainingConfig
from reelforge.models.tiny.decoder_training import DecoderTrainingConfig
from reelforge.models.tiny.first_frame_training import FirstFrameTrainingConfig
from reelforge.models.tiny.random_pipeline import TinyWanConfig
from reelforge.models.tiny.shapes_world import (
    BACKGROUNDS,
    COLOURS,
    DIRECTIONS,
    FRAME_SIZE,
    NUM_FRAMES,
    SHAPES,
)


def _continuation_rows(card: dict) -> str:
    """One table row per continuation run, in order, with the `--set` overrides that reproduce it."""
    defaults = {
        "first_frame_training": asdict(FirstFrameTrainingConfig()),
        "chinese_caption_training": asdict(ChineseCaptionTrainingConfig()),
        "decoder_training": asdict(DecoderTrainingConfig()),
    }
    rows = []
    for i, run in enumerate(card.get("continuations", []), start=1):
        base = defaults.get(run["script"], {})
        sets = " ".join(f"--set {k}={v}" for k, v in run["config"].items() if base.get(k) != v) or "(defaults)"
        note = f" {run['notes']}" if run.get("notes") else ""
        rows.append(f"| {i} | `{run['script']}` | `{sets}` | {run['seconds'] / 60:.0f}{note} |")
    return "\n".join(rows)


def _history_section(card: dict) -> str:
    """The continuation runs after pretraining, in order: each later one starts from the previous weights."""
    if not card.get("continuations"):
        return ""
    return f"""
## Continuations, in order

Each run starts from the previous one's weights: `python -m reelforge.models.tiny.<script> --work-dir DIR --out DIR
--base <previous weights> <overrides>`.

| # | script | overrides | minutes |
|---|---|---|---|
{_continuation_rows(card)}
"""


def _first_frame_section(card: dict, i2v: dict | None) -> str:
    """How image-to-video was taught (first_frame_training.py) and what `eval --mode i2v` measures."""
    ff = card.get("first_frame_training")
    if ff is None:
        return ""
    runs = [run["config"] for run in card.get("continuations", []) if run["script"] == "first_frame_training"]
    steps = sum(run["steps"] for run in runs) or ff["steps"]
    text = f"""
## Image-to-video (the Wan 2.2 TI2V way)

`python -m reelforge.models.tiny.first_frame_training` continued from the text-to-video weights for {steps} steps in
all (batch {ff["batch"]}, AdamW, EMA {ff["ema_decay"]}; the runs are listed under "Continuations"):
{ff["conditioned_fraction"]:.0%} of each batch keeps its clip's first latent frame clean with timestep 0 on its tokens
and no loss there, the rest trains text-to-video as before; a share of the conditioned samples
({ff["motion_only_fraction"]:.0%} in the last run) have a caption without colour and shape ("moving left on a white
background"), so identity must come from the image. Saved with `expand_timesteps=True`: it loads as the `wan-ti2v`
family and takes an optional first frame.
"""
    if ff.get("object_weight"):
        text += f"""
In the last run the loss weighed the latent cells the object touches x{1 + ff["object_weight"]:g}
(`object_weighting.py`): in a plain mean the flat background dominates, and shape was what the
model got wrong.
"""
    if i2v:
        text += f"""
`reelforge eval --mode i2v --json` ({i2v["n"]} videos: each held-out combination's rendered first frame and a
motion-only prompt, seeds {i2v["seeds"]}, through an MP4 round trip):

| metric | value |
|---|---|
| identity_acc (colour and shape of the image kept) | {i2v["identity_acc"]:.3f} |
{_background_rows(i2v)}| direction_acc (the prompt's direction) | {i2v["direction_acc"]:.3f} |
| background_acc | {i2v["background_acc"]:.3f} |
| first_frame_psnr (dB, against the conditioning image) | {i2v["first_frame_psnr"]:.1f} |
| seconds_per_video | {i2v["seconds_per_video"]:.3f} |
"""
    return text


def _chinese_section(card: dict, evaluation: dict, zh: dict | None) -> str:
    """How Chinese prompts were taught (chinese_caption_training.py) and `eval --lang zh` next to English."""
    cc = card.get("chinese_caption_training")
    if cc is None:
        return ""
    text = f"""
## Prompts in Chinese

```bash
python -m reelforge.models.tiny.chinese_caption_training --work-dir runs/tiny-zh --out reelforge/models/tiny/weights
```

The tokenizer gained the Chinese words of the caption grammar ("一个红色的圆形在白色背景上向左移动"), appended after
the English ones so no English id moved; NFKC folds full-width letters. The text encoder gained their embedding
rows, each started from its English word's row. Only those rows trained ({cc["steps"]} steps, batch {cc["batch"]},
AdamW lr {cc["lr"]}, {card.get("chinese_caption_seconds", 0) / 60:.0f} minutes): the frozen transformer's prediction for a noisy
training latent and the Chinese caption had to match its prediction for the English caption;
{cc["conditioned_fraction"]:.0%} of the samples were image-to-video with motion-only captions. The transformer, the VAE and
every English row stayed bit-identical in that run, so English prompts gave the same videos; a later run that
trains the transformer freezes the text encoder (`train_text_encoder=false`) so the Chinese rows survive it.
"""
    if zh:
        rows = "\n".join(
            f"| {key} | {evaluation[key]:.3f} | {zh[key]:.3f} |"
            for key in ("colour_acc", "shape_acc", "direction_acc", "background_acc", "adherence")
        )
        text += f"""
`reelforge eval --lang zh --json`: the same {zh["n"]} held-out combinations and seeds, prompts in Chinese:

| metric | English | Chinese |
|---|---|---|
{rows}
"""
    return text


def _background_rows(result: dict) -> str:
    """One table row per background's `identity_acc`, where the result has them."""
    parts = result.get("identity_acc_by_background") or {}
    return "".join(f"| identity_acc on {k} | {v:.3f} |\n" for k, v in parts.items())


def _by_background(result: dict) -> str:
    """`identity_acc` per background in words, where the result has it."""
    parts = result.get("identity_acc_by_background") or {}
    return "; by background " + ", ".join(f"{k} {v:.3f}" for k, v in parts.items()) if parts else ""


def _vae_line(vae: dict | float) -> str:
    """The VAE's own measurement: `reelforge eval --mode vae` results, or a PSNR measured by hand."""
    if not isinstance(vae, dict):
        return f"VAE reconstruction of held-out clips: PSNR {vae:.1f} dB (mean over 16 clips)."
    return f"""`reelforge eval --mode vae` (the VAE alone on the {vae["n"]} held-out image-to-video clips): PSNR
{vae["psnr"]:.1f} dB; after encode, decode and an MP4 round trip the analyzer reads colour and shape right on
{vae["identity_acc"]:.3f} of them (shape {vae["shape_acc"]:.3f}){_by_background(vae)}. Every video is decoded by this VAE, so this caps every
shape metric below, whatever the transformer does."""


def _decoder_run(config: dict, seconds: float) -> str:
    """One decoder_training run in words: what trained, on which loss, for how long."""
    width = config.get("decoder_base_dim") or 0
    what = (
        f"a new decoder of {width} base channels, {width / TinyWanConfig.reelforge_tiny().vae_base_dim:g}x the encoder's, from random weights"
        if width
        else "the decoder further, from its weights"
    )
    outline = (
        f", pixels within {config['edge_band']} px of the object's outline +{config['edge_weight']:g}"
        if config.get("edge_weight")
        else ""
    )
    return (
        f"{what} ({config['steps']} steps, batch {config['batch']}, AdamW lr {config['lr']}, the pretraining's L1+L2 loss "
        f"with object pixels x{1 + config['object_weight']:g} and brand pixels x{1 + config['brand_weight']:g}{outline}, "
        f"brand looks on {config['brand_fraction']:.0%} of its clips; {seconds / 60:.0f} minutes)"
    )


def _decoder_section(card: dict) -> str:
    """How the decoder was sharpened (decoder_training.py), run by run, if it was."""
    runs = [run for run in card.get("continuations", []) if run["script"] == "decoder_training"]
    if not runs:
        return ""
    steps = "\n".join(f"{i}. {_decoder_run(run['config'], run['seconds'])}." for i, run in enumerate(runs, start=1))
    return f"""
## A sharper decoder

The pretrained VAE rounded squares' and triangles' corners: decoded through it, the analyzer read
only 0.781 of the held-out clips' colour and shape right (1.000 on the rendered clips), which capped
text-to-video `shape_acc` and image-to-video `identity_acc` near 0.78. On the mid-grey background
nothing clips a decoder's blur and dark halo the way 0 and 255 do on black and white, so shapes
there stayed blobs longest. `python -m reelforge.models.tiny.decoder_training` trained, in turn:

{steps}

Each reconstructs clips from the frozen encoder's mode latents. The encoder, the latent space,
the transformer and the text encoder are bit-identical, so cached latents stay valid; a LoRA
trained on an old decoder can still decode its brand colours differently (retrain adapters after
a decoder change).
"""


def render_model_card(
    card: dict, evaluation: dict, vae: dict | float, i2v: dict | None = None, zh: dict | None = None
) -> str:
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

{_vae_line(vae)}

`reelforge eval --model reelforge-tiny --json` ({evaluation["n"]} videos: {evaluation["prompts"]} held-out prompts x seeds
{evaluation["seeds"]}, {d["steps"]} steps, guidance {d["guidance"]:g}, each through an MP4 round trip):

| metric | value |
|---|---|
{rows}
{brand_rows}
{_decoder_section(card)}{_first_frame_section(card, i2v)}{_chinese_section(card, evaluation, zh)}{_history_section(card)}"""


def main(argv: list[str] | None = None) -> None:
    """Command line: write MODEL_CARD.md next to the weights."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--eval", type=Path, required=True, help="JSON written by `reelforge eval --json`")
    vae = parser.add_mutually_exclusive_group(required=True)
    vae.add_argument("--eval-vae", type=Path, help="JSON written by `reelforge eval --mode vae --json`")
    vae.add_argument("--vae-psnr", type=float, help="a VAE PSNR measured otherwise")
    parser.add_argument("--eval-i2v", type=Path, help="JSON written by `reelforge eval --mode i2v --json`")
    parser.add_argument("--eval-zh", type=Path, help="JSON written by `reelforge eval --lang zh --json`")
    args = parser.parse_args(argv)
    card = json.loads((args.weights / "reelforge.json").read_text())
    evaluation = json.loads(args.eval.read_text())
    i2v = json.loads(args.eval_i2v.read_text()) if args.eval_i2v else None
    zh = json.loads(args.eval_zh.read_text()) if args.eval_zh else None
    vae_result = json.loads(args.eval_vae.read_text()) if args.eval_vae else args.vae_psnr
    (args.weights / "MODEL_CARD.md").write_text(render_model_card(card, evaluation, vae_result, i2v, zh))


if __name__ == "__main__":
    main()
