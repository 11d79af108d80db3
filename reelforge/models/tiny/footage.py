"""Write shapes-world footage as a company would upload it: MP4 clips with same-stem captions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from reelforge.errors import UserInputError
from reelforge.models.tiny.brand_looks import BrandLook
from reelforge.models.tiny.shapes_world import Combo, render_clip, sample_clip_spec
from reelforge.models.video_io import write_mp4

MAX_FOOTAGE_CLIPS = 10_000


@dataclass(frozen=True)
class FootageClip:
    """One written clip: its video, its caption file and the caption."""

    video: Path
    caption_file: Path
    caption: str


def write_footage(
    out_dir: Path,
    count: int,
    seed: int = 0,
    brand: BrandLook | None = None,
    combos: list[Combo] | None = None,
    progress: bool = False,
) -> list[FootageClip]:
    """Render `count` clips (optionally restricted to `combos`) with `brand` on every frame.

    Files are `clip_0000.mp4` + `clip_0000.txt`; existing files of those names are overwritten,
    anything else in `out_dir` is left alone.
    """
    if not 1 <= count <= MAX_FOOTAGE_CLIPS:
        raise UserInputError(f"--count must be between 1 and {MAX_FOOTAGE_CLIPS}, got {count}")
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    clips = []
    for index in tqdm(range(count), desc="footage", unit="clip", disable=not progress):
        combo = combos[rng.integers(len(combos))] if combos else None
        spec = sample_clip_spec(rng, combo)
        video, _ = render_clip(spec)
        if brand is not None:
            video = brand.apply(video)
        stem = f"clip_{index:04d}"
        video_path = write_mp4(video, out_dir / f"{stem}.mp4")
        caption_path = out_dir / f"{stem}.txt"
        caption_path.write_text(spec.caption + "\n", encoding="utf-8")
        clips.append(FootageClip(video_path, caption_path, spec.caption))
    return clips
