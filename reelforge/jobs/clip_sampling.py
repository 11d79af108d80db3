"""Where in a video the training clips come from: the sampling strategies, as pure functions.

A clip is `num_frames` frames at the model's fps starting at `start_s`; it covers
[start_s, start_s + num_frames / fps). Strategies:

* `scene` (the default): windows spread over every usable shot, none spanning a cut. Shots take
  turns, in time order, so a 3-minute edit gives clips from its whole length rather than its first
  seconds; within a shot the windows are spread evenly. A window keeps `margin_s` (a source frame)
  away from each cut, so a cut detected one frame off still falls outside it.
* `uniform`: windows spread evenly over the whole video, ignoring cuts (footage known to be one
  continuous take, where the detection pass can be skipped).
* `head`: consecutive windows from the start (the earlier behaviour, for comparison).

With frame-count buckets (several clip lengths), a shot too short for the longest is cut to the
longest that fits it. Windows never overlap, which keeps near-duplicate clips out of the training set. `cap_dataset`
then bounds the whole dataset, taking clips from every video in turn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from reelforge.jobs.shot_detection import Shot

EPSILON = 1e-9


class SamplingStrategy(str, Enum):
    """How clip windows are placed in a video."""

    SCENE = "scene"
    UNIFORM = "uniform"
    HEAD = "head"


@dataclass(frozen=True)
class ClipWindow:
    """`num_frames` frames at `fps` from `start_s`, inside shot `shot` (None when shots were not used)."""

    start_s: float
    num_frames: int
    fps: float
    shot: int | None = None

    @property
    def end_s(self) -> float:
        return self.start_s + self.num_frames / self.fps


def _spread(first_start: float, last_start: float, count: int) -> list[float]:
    """`count` start times spread evenly over [first_start, last_start] (centred when count is 1)."""
    if count == 1:
        return [(first_start + last_start) / 2]
    return [float(x) for x in np.linspace(first_start, last_start, count)]


def _fits(length_s: float, span_s: float) -> int:
    """How many non-overlapping windows of `span_s` fit in `length_s`."""
    return max(0, math.floor(length_s / span_s + EPSILON))


def _take_turns(capacities: list[int], budget: int) -> list[int]:
    """Counts per slot: one each in turn, skipping full slots, until `budget` or every slot is full.

    When the budget is smaller than the number of slots, the slots served are spread over the list.
    """
    counts = [0] * len(capacities)
    open_slots = [i for i, c in enumerate(capacities) if c > 0]
    if budget < len(open_slots):
        picks = np.linspace(0, len(open_slots) - 1, budget).round().astype(int) if budget else []
        for p in picks:
            counts[open_slots[p]] = 1
        return counts
    while budget > 0 and open_slots:
        for i in list(open_slots):
            if budget == 0:
                break
            counts[i] += 1
            budget -= 1
            if counts[i] == capacities[i]:
                open_slots.remove(i)
    return counts


def plan_windows(
    duration_s: float,
    fps: float,
    num_frames: int | tuple[int, ...],
    max_clips: int,
    strategy: SamplingStrategy = SamplingStrategy.SCENE,
    shots: list[Shot] | None = None,
    margin_s: float = 0.0,
) -> list[ClipWindow]:
    """The windows of one video of `duration_s` seconds, in time order, at most `max_clips`.

    `num_frames` may be several clip lengths (frame-count buckets): each shot is cut to the longest
    that fits it, so a shot too short for the model's default length still gives clips.
    """
    counts = sorted({num_frames} if isinstance(num_frames, int) else set(num_frames), reverse=True)
    if fps <= 0 or not counts or counts[-1] < 1 or max_clips < 1:
        raise ValueError(f"fps, num_frames and max_clips must be positive, got {fps}, {num_frames}, {max_clips}")
    num_frames = counts[0]
    span = num_frames / fps
    if strategy is SamplingStrategy.HEAD:
        count = min(max_clips, _fits(duration_s, span))
        return [ClipWindow(i * span, num_frames, fps) for i in range(count)]
    if strategy is SamplingStrategy.UNIFORM:
        count = min(max_clips, _fits(duration_s, span))
        return [ClipWindow(s, num_frames, fps) for s in _spread(0.0, duration_s - span, count)] if count else []
    shots = shots or [Shot(0, 0.0, duration_s)]
    usable = []  # (shot, clip length, first start, last start, capacity)
    for shot in shots:
        first = shot.start_s + (margin_s if shot.index > 0 else 0.0)  # no cut before the first shot
        last_end = min(shot.end_s, duration_s) - (margin_s if shot.end_s < duration_s - EPSILON else 0.0)
        length = next((n for n in counts if _fits(last_end - first, n / fps)), counts[0])
        usable.append((shot, length, first, last_end - length / fps, _fits(last_end - first, length / fps)))
    taken = _take_turns([capacity for *_, capacity in usable], max_clips)
    windows = []
    for (shot, length, first, last, _), count in zip(usable, taken):
        if count:
            windows.extend(ClipWindow(s, length, fps, shot.index) for s in _spread(first, last, count))
    return windows


def cap_dataset(plans: list[list[ClipWindow]], max_clips: int) -> list[list[ClipWindow]]:
    """At most `max_clips` windows over all videos: videos take turns, each keeping an even spread."""
    counts = _take_turns([len(plan) for plan in plans], max_clips)
    kept = []
    for plan, count in zip(plans, counts):
        if count == len(plan):
            kept.append(plan)
        else:
            indices = np.linspace(0, len(plan) - 1, count).round().astype(int) if count else []
            kept.append([plan[i] for i in indices])
    return kept
