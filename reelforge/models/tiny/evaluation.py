"""`reelforge eval`: prompt adherence and brand transfer of a model on held-out shapes-world prompts.

Generates every held-out combination's caption (never seen in pretraining) with two seeds, writes
each video through an MP4 round trip as a user would receive it, and reads it with the analyzer.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from reelforge.models.loading import VideoModel
from reelforge.models.sampling import GenerationSettings, generate
from reelforge.models.tiny.analyzer import analyze
from reelforge.models.tiny.brand_looks import BRAND_KINDS, BrandLook
from reelforge.models.tiny.shapes_world import caption, held_out_combos
from reelforge.models.video_io import read_video, write_mp4

EVAL_SEEDS = (0, 1)


@dataclass(frozen=True)
class EvalConfig:
    """Which prompts, seeds and sampler settings `reelforge eval` uses."""

    prompts: int = 48
    seeds: tuple[int, ...] = EVAL_SEEDS
    steps: int | None = None
    guidance: float | None = None


def evaluate(model: VideoModel, config: EvalConfig = EvalConfig(), brand: BrandLook | None = None, progress: bool = False) -> dict:
    """Generate, round-trip and analyse; return the accuracy and brand metrics as a dict."""
    combos = held_out_combos(config.prompts)
    jobs = [(combo, seed) for combo in combos for seed in config.seeds]
    correct = {"colour": 0, "shape": 0, "direction": 0, "background": 0}
    adherent = 0
    brand_hits = {kind: 0 for kind in BRAND_KINDS}
    target_hits = 0
    seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "eval.mp4"
        for combo, seed in tqdm(jobs, desc="eval", unit="video", disable=not progress):
            started = time.perf_counter()
            video = generate(model, GenerationSettings(caption(*combo), seed=seed, steps=config.steps, guidance=config.guidance))
            seconds += time.perf_counter() - started
            analysis = analyze(read_video(write_mp4(video, path)))
            matches = analysis.matches(combo)
            for key, ok in matches.items():
                correct[key] += ok
            adherent += all(matches.values())
            for kind, reading in analysis.brands.items():
                brand_hits[kind] += reading.present
            if brand is not None:
                reading = analysis.brands[brand.kind]
                target_hits += reading.present and reading.colour == brand.colour
    n = len(jobs)
    brand_rates = {kind: hits / n for kind, hits in brand_hits.items()}
    return {
        "model": model.name,
        "n": n,
        "prompts": len(combos),
        "seeds": list(config.seeds),
        "colour_acc": correct["colour"] / n,
        "shape_acc": correct["shape"] / n,
        "direction_acc": correct["direction"] / n,
        "background_acc": correct["background"] / n,
        "adherence": adherent / n,
        # With --brand: the fraction showing that look in that colour; without: the most frequent look.
        "brand": brand.spec if brand else None,
        "brand_rate": target_hits / n if brand else max(brand_rates.values()),
        "brand_rates": brand_rates,
        "seconds_per_video": seconds / n,
    }
