"""Cut decoded footage into model-sized clips: the clip policy and the resolution buckets.

Clip policy (documented for users): after resampling to the model's fps, a video of N frames gives
consecutive, non-overlapping windows of the model's frame count L starting at frame 0, at most
`max_clips` of them; a tail shorter than L is dropped, and a video shorter than L gives none.
Non-overlapping windows keep near-duplicate clips out of the training set.

Buckets: each clip goes to the model resolution whose aspect ratio is closest to the video's, is
resized to cover it (aspect preserved), then centre-cropped, so nothing is ever stretched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from reelforge.models.video_io import Video


@dataclass(frozen=True)
class ClipWindow:
    """Frames [start, start + length) of a resampled video."""

    start: int
    length: int


def plan_clips(num_frames: int, clip_frames: int, max_clips: int = 8) -> list[ClipWindow]:
    """Consecutive non-overlapping windows of `clip_frames`, at most `max_clips`."""
    if clip_frames < 1 or max_clips < 1:
        raise ValueError(f"clip_frames and max_clips must be positive, got {clip_frames}, {max_clips}")
    count = min(num_frames // clip_frames, max_clips)
    return [ClipWindow(i * clip_frames, clip_frames) for i in range(count)]


def choose_bucket(width: int, height: int, buckets: list[tuple[int, int]]) -> tuple[int, int]:
    """The (width, height) bucket whose aspect ratio is closest to the video's (in log space)."""
    if not buckets:
        raise ValueError("no resolution buckets given")
    aspect = np.log(width / height)
    return min(buckets, key=lambda b: (abs(np.log(b[0] / b[1]) - aspect), -b[0] * b[1]))


def resize_center_crop(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Frames (F, H, W, 3) uint8 -> (F, height, width, 3): scale to cover, then crop the centre."""
    src_h, src_w = frames.shape[1:3]
    scale = max(width / src_w, height / src_h)
    new_w, new_h = max(width, round(src_w * scale)), max(height, round(src_h * scale))
    left, top = (new_w - width) // 2, (new_h - height) // 2
    # Area-style filtering when shrinking avoids aliasing; bicubic when growing.
    method = Image.BOX if scale < 1 else Image.BICUBIC
    out = np.empty((frames.shape[0], height, width, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        image = Image.fromarray(frame)
        if (new_w, new_h) != (src_w, src_h):
            image = image.resize((new_w, new_h), method)
        out[i] = np.asarray(image)[top : top + height, left : left + width]
    return out


def cut_clips(video: Video, clip_frames: int, buckets: list[tuple[int, int]], max_clips: int = 8) -> list[Video]:
    """Apply the clip policy and the bucket resize to one resampled video."""
    width, height = choose_bucket(video.width, video.height, buckets)
    return [
        Video(resize_center_crop(video.frames[w.start : w.start + w.length], width, height), video.fps)
        for w in plan_clips(video.num_frames, clip_frames, max_clips)
    ]
