"""Resolution buckets: each clip goes to the model resolution whose aspect ratio is closest to the
video's as displayed; it is then resized to cover it (aspect preserved) and centre-cropped, so
nothing is ever stretched."""

from __future__ import annotations

import numpy as np


def choose_bucket(width: int, height: int, buckets: list[tuple[int, int]]) -> tuple[int, int]:
    """The (width, height) bucket whose aspect ratio is closest to the video's (in log space)."""
    if not buckets:
        raise ValueError("no resolution buckets given")
    aspect = np.log(width / height)
    return min(buckets, key=lambda b: (abs(np.log(b[0] / b[1]) - aspect), -b[0] * b[1]))
