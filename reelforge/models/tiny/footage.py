"""Write shapes-world footage as a company would upload it: MP4 clips with same-stem captions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from reelforge.errors import UserInputError
from reelforge.models.tiny.brand_looks import BrandLook
from reelforge.models.tiny.shapes_world import LANGUAGES, Combo, caption, render_clip, sample_clip_spec
from reelforge.models.video_io import write_mp4

MAX_FOOTAGE_CLIPS = 10_000
FOOTAGE_LANGUAGES = (*LANGUAGES, "mixed")


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
    lang: str = "en",
) -> list[FootageClip]:
    """Render `count` clips (optionally restricted to `combos`) with `brand` on every frame.

    Captions are English, Chinese, or (`mixed`) each clip's language drawn from the seed, half and half.
    Files are `clip_0000.mp4` + `clip_0000.txt`; existing files of those names are overwritten,
    anything else in `out_dir` is left alone.
    """
    if not 1 <= count <= MAX_FOOTAGE_CLIPS:
        raise UserInputError(f"--count must be between 1 and {MAX_FOOTAGE_CLIPS}, got {count}")
    if lang not in FOOTAGE_LANGUAGES:
        raise UserInputError(f"--lang must be one of {', '.join(FOOTAGE_LANGUAGES)}, got {lang!r}", param="lang")
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # Its own stream, so the clips of a seed are the same in every language.
    lang_rng = np.random.default_rng([seed, 1])
    clips = []
    for index in tqdm(range(count), desc="footage", unit="clip", disable=not progress):
        combo = combos[rng.integers(len(combos))] if combos else None
        spec = sample_clip_spec(rng, combo)
        video, _ = render_clip(spec)
        if brand is not None:
            video = brand.apply(video)
        clip_lang = LANGUAGES[int(lang_rng.integers(len(LANGUAGES)))] if lang == "mixed" else lang
        text = caption(spec.colour, spec.shape, spec.direction, spec.background, lang=clip_lang)
        stem = f"clip_{index:04d}"
        video_path = write_mp4(video, out_dir / f"{stem}.mp4")
        caption_path = out_dir / f"{stem}.txt"
        caption_path.write_text(text + "\n", encoding="utf-8")
        clips.append(FootageClip(video_path, caption_path, text))
    return clips
