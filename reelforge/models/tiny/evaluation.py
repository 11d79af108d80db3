"""`reelforge eval`: prompt adherence and brand transfer of a model on held-out shapes-world prompts.

Generates every held-out combination's caption (never seen in pretraining) with two seeds, writes
each video through an MP4 round trip as a user would receive it, and reads it with the analyzer.

`--mode i2v` starts each video from the first frame of a rendered held-out clip and a prompt that
names only the motion ("moving left on a white background"): the object's colour and shape must
come from the image (`identity_acc`), its direction from the text (`direction_acc`), and the first
frame must survive (`first_frame_psnr`, against the conditioning image, after the MP4 round trip).

`--mode vae` runs the VAE alone on those clips: reconstruction PSNR, and the colour and shape the
analyzer still reads after encode, decode and an MP4 round trip (a ceiling for every mode above).

`--lang zh` asks for the same combinations in the Chinese caption grammar ("一个红色的圆形在白色背景上向左移动").
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from reelforge.models.loading import VideoModel
from reelforge.models.sampling import GenerationSettings, generate
from reelforge.models.tiny.analyzer import analyze
from reelforge.models.tiny.brand_looks import BRAND_KINDS, BrandLook
from reelforge.models.tiny.shapes_world import (
    Combo,
    caption,
    held_out_combos,
    motion_caption,
    render_clip,
    sample_clip_spec,
)
from reelforge.models.video_io import Video, read_video, write_mp4

EVAL_SEEDS = (0, 1)


@dataclass(frozen=True)
class EvalConfig:
    """Which prompts, seeds and sampler settings `reelforge eval` uses."""

    prompts: int = 48
    seeds: tuple[int, ...] = EVAL_SEEDS
    steps: int | None = None
    guidance: float | None = None
    lang: str = "en"  # the prompts' language: "en" or "zh" (same combinations, same seeds)


SCORE_KEYS = ("colour", "shape", "direction", "background", "adherent", "target_brand", *BRAND_KINDS)
WORLD_CARD_KEY = "world"


def is_shapes_world_model(model_dir: Path) -> bool:
    """True when the model card says the model was trained on the shapes world (so `evaluate` means something)."""
    card = Path(model_dir) / "reelforge.json"
    return card.is_file() and json.loads(card.read_text()).get(WORLD_CARD_KEY) == "shapes"


def eval_jobs(config: EvalConfig = EvalConfig()) -> list[tuple[Combo, int]]:
    """Every (held-out combination, seed) pair the evaluation generates, in a fixed order."""
    return [(combo, seed) for combo in held_out_combos(config.prompts) for seed in config.seeds]


def score_videos(
    model: VideoModel,
    jobs: list[tuple[Combo, int]],
    config: EvalConfig = EvalConfig(),
    brand: BrandLook | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Generate `jobs`, round-trip each through MP4, analyse; counts per key of SCORE_KEYS plus n and seconds.

    Counts (not rates) so that slices scored on different workers can simply be summed.
    """
    counts = {key: 0.0 for key in SCORE_KEYS} | {"n": 0.0, "seconds": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "eval.mp4"
        for combo, seed in tqdm(jobs, desc="eval", unit="video", disable=not progress):
            started = time.perf_counter()
            video = generate(
                model,
                GenerationSettings(
                    caption(*combo, lang=config.lang), seed=seed, steps=config.steps, guidance=config.guidance
                ),
            )
            counts["seconds"] += time.perf_counter() - started
            analysis = analyze(read_video(write_mp4(video, path)))
            matches = analysis.matches(combo)
            for key, ok in matches.items():
                counts[key] += ok
            counts["adherent"] += all(matches.values())
            for kind, reading in analysis.brands.items():
                counts[kind] += reading.present
            if brand is not None:
                reading = analysis.brands[brand.kind]
                counts["target_brand"] += reading.present and reading.colour == brand.colour
            counts["n"] += 1
    return counts


def summarize(counts: dict[str, float], model_name: str, config: EvalConfig, brand: BrandLook | None) -> dict:
    """The `reelforge eval` metrics from summed counts."""
    n = max(counts["n"], 1)
    brand_rates = {kind: counts[kind] / n for kind in BRAND_KINDS}
    return {
        "model": model_name,
        "n": int(counts["n"]),
        "prompts": config.prompts,
        "seeds": list(config.seeds),
        "lang": config.lang,
        "colour_acc": counts["colour"] / n,
        "shape_acc": counts["shape"] / n,
        "direction_acc": counts["direction"] / n,
        "background_acc": counts["background"] / n,
        "adherence": counts["adherent"] / n,
        # With a brand: the fraction showing that look in that colour; without: the most frequent look.
        "brand": brand.spec if brand else None,
        "brand_rate": counts["target_brand"] / n if brand else max(brand_rates.values()),
        "brand_rates": brand_rates,
        "seconds_per_video": counts["seconds"] / n,
    }


def evaluate(
    model: VideoModel, config: EvalConfig = EvalConfig(), brand: BrandLook | None = None, progress: bool = False
) -> dict:
    """Generate, round-trip and analyse every held-out prompt; return the accuracy and brand metrics as a dict."""
    return summarize(score_videos(model, eval_jobs(config), config, brand, progress), model.name, config, brand)


def first_frame_psnr(generated: np.ndarray, reference: np.ndarray) -> float:
    """PSNR (dB) of a generated first frame (H, W, 3) against the conditioning image, capped at 60."""
    mse = float(np.mean((generated.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return 60.0 if mse < 1e-6 else min(60.0, 10 * np.log10(255.0**2 / mse))


def held_out_clip(combo: Combo, seed: int) -> Video:
    """The rendered clip of `combo` that image-to-video and VAE evaluation start from, fixed by `seed`."""
    rng = np.random.default_rng([seed, *(hash_word(w) for w in combo)])
    return render_clip(sample_clip_spec(rng, combo))[0]


def conditioning_frame(combo: Combo, seed: int) -> np.ndarray:
    """The first frame (H, W, 3) uint8 of a rendered clip of `combo`: the object where that clip starts."""
    return held_out_clip(combo, seed).frames[0]


def hash_word(word: str) -> int:
    """A stable small integer per word (Python's hash() changes per process)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(word))


def _header(model: VideoModel, mode: str, n: float, config: EvalConfig) -> dict:
    """What every image-to-video and VAE result starts with: which model, mode and held-out jobs."""
    return {"model": model.name, "mode": mode, "n": int(n), "prompts": config.prompts, "seeds": list(config.seeds)}


def identity_by_background(hits: dict[str, float], totals: dict[str, float]) -> dict[str, float]:
    """`identity_acc` per background: the shipped VAE reads nearly every shape on white and black, and
    half on gray (objects on the mid-grey background decode as blobs), which one overall rate hides."""
    return {background: hits.get(background, 0.0) / count for background, count in sorted(totals.items())}


def evaluate_i2v(model: VideoModel, config: EvalConfig = EvalConfig(), progress: bool = False) -> dict:
    """Image-to-video on held-out combinations: identity from the image, direction from the text, first frame kept."""
    counts = {"identity": 0.0, "direction": 0.0, "background": 0.0, "psnr": 0.0, "n": 0.0, "seconds": 0.0}
    hits: dict[str, float] = {}
    totals: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "eval.mp4"
        for combo, seed in tqdm(eval_jobs(config), desc="eval i2v", unit="video", disable=not progress):
            colour, shape, direction, background = combo
            image = conditioning_frame(combo, seed)
            settings = GenerationSettings(
                motion_caption(direction, background, config.lang),
                seed=seed,
                steps=config.steps,
                guidance=config.guidance,
                height=image.shape[0],
                width=image.shape[1],
                image=image,
            )
            started = time.perf_counter()
            video = generate(model, settings)
            counts["seconds"] += time.perf_counter() - started
            received = read_video(write_mp4(video, path))
            matches = analyze(received).matches(combo)
            kept = matches["colour"] and matches["shape"]
            counts["identity"] += kept
            hits[background] = hits.get(background, 0.0) + kept
            totals[background] = totals.get(background, 0.0) + 1
            counts["direction"] += matches["direction"]
            counts["background"] += matches["background"]
            counts["psnr"] += first_frame_psnr(received.frames[0], image)
            counts["n"] += 1
    n = max(counts["n"], 1)
    return {
        **_header(model, "i2v", counts["n"], config),
        "lang": config.lang,
        "identity_acc": counts["identity"] / n,
        "identity_acc_by_background": identity_by_background(hits, totals),
        "direction_acc": counts["direction"] / n,
        "background_acc": counts["background"] / n,
        "first_frame_psnr": counts["psnr"] / n,
        "seconds_per_video": counts["seconds"] / n,
    }


def evaluate_vae(model: VideoModel, config: EvalConfig = EvalConfig(), progress: bool = False) -> dict:
    """The VAE alone on the held-out clips: reconstruction PSNR, and what the analyzer still reads after it.

    Every video the model makes is decoded by this VAE, so its `identity_acc` (colour and shape read
    right after encode, decode and an MP4 round trip) caps what any transformer can reach.
    """
    import torch

    counts = {"identity": 0.0, "shape": 0.0, "psnr": 0.0, "n": 0.0}
    hits: dict[str, float] = {}
    totals: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "eval.mp4"
        for combo, seed in tqdm(eval_jobs(config), desc="eval vae", unit="clip", disable=not progress):
            clip = held_out_clip(combo, seed)
            pixels = torch.from_numpy(clip.frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0  # (1, 3, F, H, W)
            with torch.no_grad():
                latents = model.spec.encode_video(model.pipeline, pixels.to(model.device))
                decoded = model.spec.decode_latents(model.pipeline, latents)[0].float().cpu()  # (3, F, H, W)
            frames = ((decoded.permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
            counts["psnr"] += float(np.mean([first_frame_psnr(a, b) for a, b in zip(frames, clip.frames)]))
            matches = analyze(read_video(write_mp4(Video(frames, clip.fps), path))).matches(combo)
            kept = matches["colour"] and matches["shape"]
            counts["identity"] += kept
            hits[combo[3]] = hits.get(combo[3], 0.0) + kept
            totals[combo[3]] = totals.get(combo[3], 0.0) + 1
            counts["shape"] += matches["shape"]
            counts["n"] += 1
    n = max(counts["n"], 1)
    return {
        **_header(model, "vae", counts["n"], config),
        "identity_acc": counts["identity"] / n,
        "identity_acc_by_background": identity_by_background(hits, totals),
        "shape_acc": counts["shape"] / n,
        "psnr": counts["psnr"] / n,
    }
