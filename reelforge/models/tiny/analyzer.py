"""Read a shapes-world video back: colour, shape, direction, background, and brand looks.

Works from decoded frames only (generated or rendered, after any MP4 round trip), so prompt
adherence and brand transfer become numbers. The geometry it relies on is the world's: the object
stays inside the central object box, and each brand look covers edge pixels that no other look
covers (its *evidence* region), so looks are told apart even when several are present.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from reelforge.models.tiny.brand_looks import BRAND_COLOURS, BRAND_KINDS, brand_region
from reelforge.models.tiny.shapes_world import (
    BACKGROUNDS,
    COLOURS,
    FRAME_SIZE,
    OBJECT_MAX,
    OBJECT_MIN,
    SHAPES,
    Combo,
    shape_mask,
)
from reelforge.models.video_io import Video

BRAND_PRESENT = 0.6  # fraction of a look's evidence pixels that must carry one non-background colour
FAR_FROM_BACKGROUND = 70.0  # RGB distance that separates painted pixels from background noise
MASK_FRACTION = 0.6  # of the peak distance: where an object pixel ends


@dataclass(frozen=True)
class Reading:
    """One attribute's value (None when unreadable) and a confidence in [0, 1]."""

    value: str | None
    confidence: float


@dataclass(frozen=True)
class BrandReading:
    """Whether a brand look of one kind is present, how surely, and in which colour."""

    present: bool
    confidence: float
    colour: str | None


@dataclass(frozen=True)
class Analysis:
    """Everything the analyzer reads from one video."""

    colour: Reading
    shape: Reading
    direction: Reading
    background: Reading
    brands: dict[str, BrandReading] = field(default_factory=dict)

    def matches(self, combo: Combo) -> dict[str, bool]:
        """Which of (colour, shape, direction, background) agree with `combo`."""
        colour, shape, direction, background = combo
        return {
            "colour": self.colour.value == colour,
            "shape": self.shape.value == shape,
            "direction": self.direction.value == direction,
            "background": self.background.value == background,
        }

    def to_dict(self) -> dict:
        """JSON-ready form."""
        reading = lambda r: {"value": r.value, "confidence": round(r.confidence, 3)}  # noqa: E731
        return {
            "colour": reading(self.colour),
            "shape": reading(self.shape),
            "direction": reading(self.direction),
            "background": reading(self.background),
            "brands": {
                k: {"present": b.present, "confidence": round(b.confidence, 3), "colour": b.colour}
                for k, b in self.brands.items()
            },
        }


def _distance(pixels: np.ndarray, rgb) -> np.ndarray:
    return np.linalg.norm(pixels.astype(np.float32) - np.asarray(rgb, dtype=np.float32), axis=-1)


@lru_cache(maxsize=8)
def evidence_regions(size: int) -> dict[str, np.ndarray]:
    """Per look, the pixels that look covers and no other look does."""
    regions = {kind: brand_region(kind, size) for kind in BRAND_KINDS}
    evidence = {}
    for kind, region in regions.items():
        others = np.zeros_like(region)
        for other, mask in regions.items():
            if other != kind:
                others |= mask
        evidence[kind] = region & ~others
    return evidence


def _object_box(size: int) -> slice:
    scale = size / FRAME_SIZE
    return slice(int(round(OBJECT_MIN * scale)), int(round(OBJECT_MAX * scale)))


def read_background(median: np.ndarray) -> Reading:
    """Most of the object box's temporal median is background (the object moves)."""
    box = _object_box(median.shape[0])
    pixels = median[box, box].reshape(-1, 3)
    votes = {name: float((_distance(pixels, rgb) < FAR_FROM_BACKGROUND).mean()) for name, rgb in BACKGROUNDS.items()}
    best = max(votes, key=votes.get)
    return Reading(best if votes[best] > 0.3 else None, votes[best])


def read_brands(median: np.ndarray, background_rgb) -> dict[str, BrandReading]:
    """Each look: present if most evidence pixels share one colour that is not the background."""
    readings = {}
    for kind, region in evidence_regions(median.shape[0]).items():
        pixels = median[region].astype(np.float32)  # (N, 3)
        painted = _distance(pixels, background_rgb) > FAR_FROM_BACKGROUND
        centre = np.median(pixels, axis=0)
        coherent = _distance(pixels, centre) < FAR_FROM_BACKGROUND
        confidence = float((painted & coherent).mean())
        colour = min(BRAND_COLOURS, key=lambda n: float(_distance(centre[None], BRAND_COLOURS[n])[0]))
        present = confidence >= BRAND_PRESENT
        readings[kind] = BrandReading(present, confidence, colour if present else None)
    return readings


def _hue_name(rgb: np.ndarray) -> tuple[str, float]:
    """Nearest named colour by hue, with a confidence from the angular margin to the runner-up."""
    h, s, _ = colorsys.rgb_to_hsv(*(np.asarray(rgb, dtype=np.float64) / 255.0))
    distances = {}
    for name, ref in COLOURS.items():
        href, _, _ = colorsys.rgb_to_hsv(*(np.asarray(ref) / 255.0))
        d = abs(h - href)
        distances[name] = min(d, 1 - d) * 360
    ranked = sorted(distances, key=distances.get)
    margin = distances[ranked[1]] - distances[ranked[0]]
    return ranked[0], float(np.clip(margin / 60.0, 0, 1) * min(1.0, s / 0.3))


def _best_iou(shape: str, mask: np.ndarray, cx: float, cy: float, extent: float) -> float:
    """Best IoU of `mask` with `shape` over small size and position changes (codec edges wobble)."""
    best = 0.0
    for grow in (-1.0, -0.5, 0.0, 0.5):
        for dx, dy in ((0.0, 0.0), (0.5, 0.0), (-0.5, 0.0), (0.0, 0.5), (0.0, -0.5)):
            template = shape_mask(shape, (cx + dx, cy + dy), extent + grow, mask.shape[0], supersample=2) >= 0.5
            union = (template | mask).sum()
            best = max(best, (template & mask).sum() / union if union else 0.0)
    return float(best)


def _object_masks(frames: np.ndarray, background_rgb) -> tuple[np.ndarray, np.ndarray] | None:
    """(painted masks (F, h, w), core object pixels (N, 3)) of the object box, or None when nothing is painted."""
    box = _object_box(frames.shape[1])
    crop = frames[:, box, box].astype(np.float32)  # (F, h, w, 3)
    distance = _distance(crop, background_rgb)  # (F, h, w)
    peak = np.percentile(distance, 99.5)
    if peak < FAR_FROM_BACKGROUND:
        return None
    masks = distance > peak * MASK_FRACTION  # (F, h, w): painted pixels, incl. chroma-blurred edges
    return masks, crop[distance > 0.75 * peak]


def _frame_shape(mask: np.ndarray, size: int) -> tuple[tuple[float, float], dict[str, float]] | None:
    """(centre (x, y) in the box, IoU per shape) of one frame's object mask (h, w); None if too few pixels."""
    ys, xs = np.nonzero(mask)
    if len(xs) < 4:
        return None
    box = _object_box(size)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    extent = ((x1 - x0) + (y1 - y0)) / 2
    cx, cy = (x0 + x1) / 2 + box.start, (y0 + y1) / 2 + box.start
    full = np.zeros((size, size), dtype=bool)
    full[box, box] = mask
    return (xs.mean(), ys.mean()), {shape: _best_iou(shape, full, cx, cy, extent) for shape in SHAPES}


def shape_per_frame(frames: np.ndarray, background_rgb) -> list[str | None]:
    """The best-fitting shape of each frame (F, H, W, 3) on its own; `read_object` averages the fits instead."""
    found = _object_masks(frames, background_rgb)
    if found is None:
        return [None] * len(frames)
    fits = [_frame_shape(mask, frames.shape[1]) for mask in found[0]]
    return [None if fit is None else max(fit[1], key=fit[1].get) for fit in fits]


def read_object(frames: np.ndarray, background_rgb) -> tuple[Reading, Reading, Reading]:
    """(colour, shape, direction) from the object box of every frame."""
    none = Reading(None, 0.0)
    found = _object_masks(frames, background_rgb)
    if found is None:
        return none, none, none
    masks, core = found
    colour, colour_conf = _hue_name(core.mean(axis=0)) if len(core) else (None, 0.0)

    centres, scores = [], {s: [] for s in SHAPES}
    for mask in masks:
        fit = _frame_shape(mask, frames.shape[1])
        if fit is None:
            continue
        centres.append(fit[0])
        for shape, iou in fit[1].items():
            scores[shape].append(iou)
    if len(centres) < 2:
        return Reading(colour, colour_conf), none, none
    mean_iou = {s: float(np.mean(v)) for s, v in scores.items()}
    ranked = sorted(mean_iou, key=mean_iou.get, reverse=True)
    shape = Reading(ranked[0], float(np.clip((mean_iou[ranked[0]] - mean_iou[ranked[1]]) * 5, 0, 1)))

    c = np.asarray(centres)  # (F', 2)
    t = np.arange(len(c), dtype=np.float64)
    slope_x, slope_y = np.polyfit(t, c[:, 0], 1)[0], np.polyfit(t, c[:, 1], 1)[0]
    if abs(slope_x) >= abs(slope_y):
        direction = "right" if slope_x > 0 else "left"
    else:
        direction = "down" if slope_y > 0 else "up"
    dominance = max(abs(slope_x), abs(slope_y)) / (abs(slope_x) + abs(slope_y) + 1e-9)
    travel = max(abs(slope_x), abs(slope_y)) * (len(c) - 1)
    direction_conf = float(np.clip((dominance - 0.5) * 2, 0, 1) * np.clip(travel / 3.0, 0, 1))
    if travel < 1.0:  # barely moving: no honest direction
        direction = None
    return Reading(colour, colour_conf), shape, Reading(direction, direction_conf)


def analyze(video: Video) -> Analysis:
    """Read colour, shape, direction, background and brand looks from `video` (square frames)."""
    frames = video.frames
    if frames.shape[1] != frames.shape[2]:
        raise ValueError(f"the analyzer reads square shapes-world frames, got {frames.shape[2]}x{frames.shape[1]}")
    median = np.median(frames, axis=0)  # (H, W, 3): the moving object mostly vanishes
    background = read_background(median)
    background_rgb = BACKGROUNDS[background.value] if background.value else np.median(median.reshape(-1, 3), axis=0)
    colour, shape, direction = read_object(frames, background_rgb)
    return Analysis(colour, shape, direction, background, read_brands(median, background_rgb))
