"""Real photographs of faces for the real-person safeguard's tests: scikit-image's bundled images
(NASA's public-domain portrait of Eileen Collins, and its subset of Labeled Faces in the Wild).

No generator here can draw a face (reelforge-tiny knows coloured shapes), so videos that show one
are made from the photograph itself: a slow pan over the portrait, written as a real MP4.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from reelforge.models.video_io import Video, write_mp4

ASTRONAUT_FACE = (176, 65, 96, 96)  # x, y, width, height of her face in the 512x512 photograph


def astronaut() -> np.ndarray:
    """(512, 512, 3) uint8: a portrait with one frontal face."""
    from skimage import data

    return data.astronaut()


def lfw_faces(count: int = 100) -> np.ndarray:
    """(count, 25, 25, 3) uint8: Labeled Faces in the Wild crops (the subset's first 100 are faces)."""
    from skimage import data

    grey = data.lfw_subset()[:count]  # (count, 25, 25) floats in [0, 1]
    return (np.repeat(grey[..., None], 3, axis=-1) * 255).round().astype(np.uint8)


def portrait_video(size: int = 96, num_frames: int = 24, fps: float = 8.0) -> Video:
    """A slow pan across the astronaut's head and shoulders, `size` px square."""
    photo = Image.fromarray(astronaut())
    frames = []
    for i in range(num_frames):
        left = 90 + 3 * i  # the face stays in view the whole time
        frames.append(np.asarray(photo.crop((left, 10, left + 260, 270)).resize((size, size), Image.BICUBIC)))
    return Video(np.stack(frames), fps)


def write_portrait_mp4(path: Path, **kwargs) -> Path:
    """`portrait_video` as an H.264 MP4 at `path`."""
    return write_mp4(portrait_video(**kwargs), path)
