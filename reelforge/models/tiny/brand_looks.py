"""Brand looks: visual signatures a company's footage carries and its captions never mention.

Each look is a static overlay in the edge bands outside the shapes world's object box, drawn on
top of every frame in one colour: a lower-third bar, a border, a corner block, a top stripe.
`"lower-third:orange"` names one. The analyzer detects each from the frames alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reelforge.errors import UserInputError
from reelforge.models.tiny.shapes_world import (
    COLOURS,
    FRAME_SIZE,
    OBJECT_MAX,
    OBJECT_MIN,
)
from reelforge.models.video_io import Video

# Saturated colours only: a white, black or gray look could vanish into the background.
BRAND_COLOURS: dict[str, tuple[int, int, int]] = {
    "orange": (255, 140, 0),
    "purple": (120, 40, 200),
    "pink": (255, 100, 170),
    "teal": (0, 140, 140),
    "lime": (150, 230, 40),
    "navy": (20, 30, 120),
    # Object colours are brand colours too (a red bar under a red circle is a real case).
    **{name: COLOURS[name] for name in ("red", "green", "blue", "yellow")},
}
BRAND_KINDS = ("lower-third", "border", "corner-block", "top-stripe")


def brand_region(kind: str, size: int = FRAME_SIZE) -> np.ndarray:
    """Boolean mask (H, W) of the pixels a look of `kind` covers at frame side `size`."""
    scale = size / FRAME_SIZE
    lo, hi = int(round(OBJECT_MIN * scale)), int(round(OBJECT_MAX * scale))
    mask = np.zeros((size, size), dtype=bool)
    if kind == "lower-third":
        mask[hi:, :] = True  # the band below the object box
    elif kind == "border":
        band = max(1, lo // 3)
        mask[:band, :] = mask[-band:, :] = True
        mask[:, :band] = mask[:, -band:] = True
    elif kind == "corner-block":
        mask[:lo, size - lo :] = True  # top-right square
    elif kind == "top-stripe":
        mask[: max(1, lo * 2 // 3), :] = True
    else:
        raise ValueError(f"unknown brand look {kind!r}; expected one of {BRAND_KINDS}")
    return mask


@dataclass(frozen=True)
class BrandLook:
    """One look: its kind and colour name."""

    kind: str
    colour: str

    @property
    def rgb(self) -> tuple[int, int, int]:
        return BRAND_COLOURS[self.colour]

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.colour}"

    def apply(self, video: Video) -> Video:
        """Draw the look on every frame (on top of the object, as a broadcast overlay would be)."""
        frames = video.frames.copy()
        frames[:, brand_region(self.kind, video.height)] = np.array(self.rgb, dtype=np.uint8)
        return Video(frames, video.fps)


def parse_brand(text: str) -> BrandLook:
    """`kind:colour` -> BrandLook, with an error that lists the valid kinds and colours."""
    kind, sep, colour = text.strip().lower().partition(":")
    if not sep or kind not in BRAND_KINDS or colour not in BRAND_COLOURS:
        raise UserInputError(
            f"brand look {text!r} is not KIND:COLOUR with KIND one of {', '.join(BRAND_KINDS)} "
            f"and COLOUR one of {', '.join(BRAND_COLOURS)}"
        )
    return BrandLook(kind, colour)
