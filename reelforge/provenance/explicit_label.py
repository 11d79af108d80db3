"""The visible AI-content label: drawn into a video's opening frames, and found again in them.

The label is the policy's text in white on a dark translucent box, in a corner of the frame, for
the policy's duration (at least 2 s; every frame of a shorter video). Its text is at least
`min_height_fraction` of the shorter side tall (5%, GB 45438-2025's rule for images) and never
under `min_height_px`. The glyphs come from the bundled Noto Sans CJK subset, so the label draws
the same on every machine and nothing is fetched at run time.

Detection renders the same label for the frame's size and compares, frame by frame, the
brightness of the text's pixels with that of the box around them: a labelled frame shows white
glyphs on a dark box at exactly those places, an unlabelled one shows no such contrast. A label
drawn smaller than the policy asks, elsewhere, or for fewer frames is reported as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from reelforge.provenance.label_policy import FONT_PATH, ExplicitLabelPolicy

BOX_OPACITY = 0.6  # how much the box darkens what is under it
# Video white, not 255: headroom for the watermark added over the label (at 255 it would clip).
GLYPH_LEVEL = 235.0
LABELLED_CONTRAST = 48.0  # 8-bit luma between glyphs and box that only a drawn label shows


@dataclass(frozen=True)
class LabelStamp:
    """The label as drawn on frames of one size: where its box is, and which pixels are glyphs."""

    top: int
    left: int
    glyphs: np.ndarray  # (h, w) float in [0, 1]: glyph coverage inside the box
    text_height: int  # pixels from the top of the tallest glyph to the bottom of the lowest

    @property
    def box(self) -> tuple[slice, slice]:
        height, width = self.glyphs.shape
        return slice(self.top, self.top + height), slice(self.left, self.left + width)


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_PATH), size)


def target_text_height(policy: ExplicitLabelPolicy, height: int, width: int) -> int:
    """The label's text height on a `height` x `width` frame: the policy's share of the shorter side, or its floor."""
    return max(math.ceil(policy.min_height_fraction * min(height, width)), policy.min_height_px)


@cache
def label_stamp(policy: ExplicitLabelPolicy, height: int, width: int) -> LabelStamp:
    """The label for frames of this size: text at least the target height, in the policy's corner."""
    target = target_text_height(policy, height, width)
    size = target
    for _ in range(8):  # grow the font until its drawn text reaches the target height
        ink_left, ink_top, ink_right, ink_bottom = _font(size).getbbox(policy.text)
        if ink_bottom - ink_top >= target:
            break
        size += max(1, target - (ink_bottom - ink_top))
    pad = max(1, target // 5)
    canvas = Image.new("L", (ink_right - ink_left + 2 * pad, ink_bottom - ink_top + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - ink_left, pad - ink_top), policy.text, font=_font(size), fill=255)
    glyphs = np.asarray(canvas, dtype=np.float32) / 255.0  # (h, w)
    glyphs = glyphs[:height, :width]  # a label wider than a tiny frame is cut at its edge
    margin = max(1, min(height, width) // 32)
    box_h, box_w = glyphs.shape
    top = margin if policy.position.startswith("top") else max(0, height - box_h - margin)
    left = margin if policy.position.endswith("left") else max(0, width - box_w - margin)
    return LabelStamp(top, left, glyphs, ink_bottom - ink_top)


def labelled_frame_count(policy: ExplicitLabelPolicy, num_frames: int, fps: float) -> int:
    """How many opening frames carry the label: the policy's duration, or the whole video when less
    than a second would be left without it (a label that vanishes just before the end flickers, and
    its sudden change over a few frames is what the watermark reader can least cancel)."""
    count = min(num_frames, math.ceil(policy.duration_s * fps))
    return num_frames if num_frames - count < fps else count


def draw_label(frames: np.ndarray, fps: float, policy: ExplicitLabelPolicy) -> np.ndarray:
    """(F, H, W, 3) uint8 frames with the label drawn on the opening ones (a new array)."""
    _, height, width, _ = frames.shape
    stamp = label_stamp(policy, height, width)
    out = frames.copy()
    rows, cols = stamp.box
    count = labelled_frame_count(policy, frames.shape[0], fps)
    region = out[:count, rows, cols].astype(np.float32)  # (n, h, w, 3)
    alpha = stamp.glyphs[None, :, :, None]  # (1, h, w, 1)
    darkened = region * (1.0 - BOX_OPACITY)
    out[:count, rows, cols] = np.clip(darkened * (1.0 - alpha) + GLYPH_LEVEL * alpha, 0, 255).round().astype(np.uint8)
    return out


@dataclass(frozen=True)
class LabelRead:
    """What detection found in a video's opening frames."""

    present: bool
    valid: bool
    labelled_seconds: float
    text_height_px: int
    text_height_fraction: float
    contrast: float  # median glyph-vs-box luma difference over the frames the label should be on
    problems: list[str] = field(default_factory=list)


def _frame_contrast(frame: np.ndarray, stamp: LabelStamp) -> float:
    rows, cols = stamp.box
    luma = frame[rows, cols].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # (h, w)
    glyph, box = stamp.glyphs > 0.75, stamp.glyphs < 0.05
    if not glyph.any() or not box.any():
        return 0.0
    return float(luma[glyph].mean() - luma[box].mean())


def detect_label(frames: np.ndarray, fps: float, policy: ExplicitLabelPolicy) -> LabelRead:
    """Whether `frames` (F, H, W, 3) carry the policy's label, for long enough and large enough."""
    count, height, width, _ = frames.shape
    stamp = label_stamp(policy, height, width)
    contrasts = [_frame_contrast(frame, stamp) for frame in frames[: labelled_frame_count(policy, count, fps) + 1]]
    labelled = 0
    for contrast in contrasts:  # consecutive labelled frames from the first
        if contrast < LABELLED_CONTRAST:
            break
        labelled += 1
    expected = labelled_frame_count(policy, count, fps)
    seconds = labelled / fps
    problems = []
    if labelled == 0:
        problems.append(f"no {policy.text!r} label in the {policy.position} corner of the first frame")
    elif labelled < expected:
        problems.append(f"the label is on the first {seconds:.2f} s only; the policy asks {policy.duration_s:g} s")
    fraction = stamp.text_height / min(height, width)
    if labelled and fraction < policy.min_height_fraction:
        problems.append(
            f"the label's text is {fraction:.1%} of the shorter side, under {policy.min_height_fraction:.0%}"
        )
    median = float(np.median(contrasts[:expected])) if expected else 0.0
    return LabelRead(
        labelled > 0, labelled > 0 and not problems, seconds, stamp.text_height, fraction, median, problems
    )
