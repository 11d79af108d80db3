"""The two per-video steps of ingestion between the inventory and the encoders, as Ray Data runs them.

1. `plan_video_clips` (one task per video): probe the container, find its shots (cached by the
   file's hash, so a re-run does not decode the video again), and place the clip windows.
2. `decode_clip_window` (one task per window): decode just that window at the model's fps, straight to
   its bucket's size.

Splitting per window lets every CPU decode at once even when a dataset is one long video, and
keeps each task's memory at one window's frames.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np

from reelforge.errors import VideoDecodeError
from reelforge.jobs.clip_sampling import ClipWindow, SamplingStrategy, plan_windows
from reelforge.jobs.resolution_buckets import choose_bucket
from reelforge.jobs.shot_detection import Shot, detect_shots
from reelforge.models.video_probe import VideoProbe, probe_video
from reelforge.models.video_windows import decode_window

logger = logging.getLogger(__name__)


def _shots(path: Path, probe: VideoProbe, sha256: str, cache_dir: Path) -> list[Shot]:
    """The video's shots, from the cache when this file's bytes were seen before."""
    cached = cache_dir / f"{sha256}.json"
    if cached.is_file():
        return [Shot(**shot) for shot in json.loads(cached.read_text())]
    shots = detect_shots(path, probe)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{id(shots)}.partial")
    partial.write_text(json.dumps([asdict(shot) for shot in shots]))
    partial.replace(cached)
    return shots


def plan_video_clips(row: dict, fps: float, num_frames: int, max_clips: int, strategy: str, shots_dir: str) -> dict:
    """`row` (an accepted video) with its probe and its clip windows added."""
    path = Path(row["path"])
    probe = probe_video(path)
    strategy = SamplingStrategy(strategy)
    shots = _shots(path, probe, row["sha256"], Path(shots_dir)) if strategy is SamplingStrategy.SCENE else None
    windows = plan_windows(probe.duration_s, fps, num_frames, max_clips, strategy, shots, margin_s=1.0 / probe.fps)
    return {**row, "probe": asdict(probe), "windows": [asdict(w) for w in windows]}


def clip_rows(video: dict, windows: list[ClipWindow], buckets: list[tuple[int, int]]) -> list[dict]:
    """One row per window of a planned video: what `decode_clip_window` needs and what the manifest lists."""
    probe = video["probe"]
    rotated = probe["rotation"] in (90, 270)
    display = (probe["height"], probe["width"]) if rotated else (probe["width"], probe["height"])
    bucket = choose_bucket(*display, buckets)
    return [
        {
            "key": video["key"],
            "file": video["file"],
            "caption": video["caption"],
            "path": video["path"],
            "probe": probe,
            "clip": i,
            "start_s": round(w.start_s, 4),
            "end_s": round(w.end_s, 4),
            "num_frames": w.num_frames,
            "fps": w.fps,
            "shot": -1 if w.shot is None else w.shot,
            "bucket": f"{bucket[0]}x{bucket[1]}",
        }
        for i, w in enumerate(windows)
    ]


def decode_clip_window(row: dict) -> list[dict]:
    """The row with its frames (F, H, W, 3) uint8; no row when the window does not decode (logged)."""
    width, height = (int(side) for side in row["bucket"].split("x"))
    try:
        frames = decode_window(
            row["path"], VideoProbe(**row["probe"]), row["start_s"], row["num_frames"], row["fps"], (width, height)
        )
    except VideoDecodeError as exc:  # a truncated file: its other windows still count
        logger.warning("%s clip %d skipped: %s", row["file"], row["clip"], exc.reason)
        return []
    out = {k: v for k, v in row.items() if k not in ("path", "probe", "num_frames", "fps")}
    return [{**out, "frames": np.ascontiguousarray(frames)}]
